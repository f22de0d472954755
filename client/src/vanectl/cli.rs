//! vanectl's command tree: etcdctl 3.4's verbs and flags, with the same names and
//! defaults, each verb's help ending in examples. Parsing only: what a verb does lives
//! in `verbs/`.
//!
//! Adding a verb is three steps: a variant of [`Command`] (with its args struct here),
//! a function in `verbs/`, and a line in `verbs::run`. Vane's configuration verbs
//! (namespaces, schemas, change requests, audit) will be subcommand groups like
//! `lease` and `member`, e.g. `Command::Namespace(NamespaceCommand)`.

use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use super::go_text::parse_duration;
use super::output::OutputFormat;

/// The whole command line.
#[derive(Debug, Parser)]
#[command(
    name = "vanectl",
    version,
    about = "A simple command line client for Vane (etcdctl-compatible).",
    after_help = "Global flags may also be set from the environment: VANECTL_ENDPOINTS, \
                  VANECTL_DIAL_TIMEOUT, VANECTL_COMMAND_TIMEOUT, VANECTL_WRITE_OUT, VANECTL_HEX, \
                  VANECTL_CACERT, VANECTL_CERT, VANECTL_KEY, VANECTL_USER, VANECTL_PASSWORD.\n\n\
                  Examples:\n  vanectl --endpoints=10.0.0.1:2379,10.0.0.2:2379 put /app/mode blue\n  \
                  vanectl get /app/ --prefix -w json\n  vanectl member list -w table",
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Flags every verb takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The verb.
    #[command(subcommand)]
    pub command: Command,
}

/// etcdctl's global flags, accepted before or after the verb.
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// gRPC endpoints (comma-separated host:port or http://host:port)
    #[arg(
        long,
        global = true,
        env = "VANECTL_ENDPOINTS",
        value_delimiter = ',',
        default_value = "127.0.0.1:2379"
    )]
    pub endpoints: Vec<String>,
    /// Dial timeout for client connections
    #[arg(long, global = true, env = "VANECTL_DIAL_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub dial_timeout: Duration,
    /// Timeout for short running commands (excluding dial timeout)
    #[arg(long, global = true, env = "VANECTL_COMMAND_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub command_timeout: Duration,
    /// Set the output format
    #[arg(
        short = 'w',
        long,
        global = true,
        env = "VANECTL_WRITE_OUT",
        value_enum,
        default_value = "simple"
    )]
    pub write_out: OutputFormat,
    /// Print byte strings as hex encoded strings
    #[arg(
        long,
        global = true,
        env = "VANECTL_HEX",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub hex: bool,

    /// Verify the members' TLS certificates with this CA bundle (https)
    #[arg(
        long = "cacert",
        id = "tls_cacert",
        global = true,
        env = "VANECTL_CACERT"
    )]
    pub cacert: Option<std::path::PathBuf>,

    /// Identify to TLS members with this client certificate
    #[arg(long = "cert", id = "tls_cert", global = true, env = "VANECTL_CERT")]
    pub cert: Option<std::path::PathBuf>,

    /// The private key of --cert
    #[arg(long = "key", id = "tls_key", global = true, env = "VANECTL_KEY")]
    pub key: Option<std::path::PathBuf>,

    /// username[:password] for authentication (prompt if password is not supplied)
    #[arg(long = "user", id = "auth_user", global = true, env = "VANECTL_USER")]
    pub user: Option<String>,

    /// password for authentication (if this option is used, --user option shouldn't include password)
    #[arg(
        long = "password",
        id = "auth_password",
        global = true,
        env = "VANECTL_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,

    /// The user and password `--user` and `--password` (or the prompt) resolved to.
    #[arg(skip)]
    pub credentials: Option<vane_client::Credentials>,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Gets the key or a range of keys
    #[command(
        after_help = "Examples:\n  vanectl get foo\n  vanectl get foo --rev=2 -w json\n  \
                            vanectl get /app/ --prefix --keys-only\n  vanectl get a z     \
                            (keys from a up to, not including, z)\n  vanectl get /app/ --prefix \
                            --sort-by=MODIFY --order=DESCEND --limit=10"
    )]
    Get(GetArgs),
    /// Puts the given key into the store
    #[command(
        after_help = "Examples:\n  vanectl put foo bar\n  vanectl put foo bar --prev-kv\n  \
                            vanectl put foo bar --lease=694d7b2a1b8e4f05\n  \
                            echo -n bar | vanectl put foo        (value from stdin)\n  \
                            vanectl put foo -- -value-starting-with-dash"
    )]
    Put(PutArgs),
    /// Removes the specified key or range of keys [key, range_end)
    #[command(
        after_help = "Examples:\n  vanectl del foo\n  vanectl del /app/ --prefix --prev-kv\n  \
                            vanectl del a z"
    )]
    Del(DelArgs),
    /// Txn processes all the requests in one transaction
    #[command(
        long_about = "Txn processes all the requests in one transaction.\n\n\
                      The input has three sections separated by blank lines: compares \
                      (`value(\"k\") = \"v\"`, `mod(\"k\") > \"5\"`, `create(\"k\") = \"0\"`, \
                      `version(\"k\") != \"1\"`, `lease(\"k\") = \"694d7b2a1b8e4f05\"`), the \
                      requests run when every compare holds, and the requests run otherwise \
                      (`put k v [--lease=ID] [--prev-kv]`, `get k [range_end] [--prefix] ...`, \
                      `del k [range_end] [--prefix] [--prev-kv]`). Keys and values with spaces \
                      go in double quotes.",
        after_help = "Examples:\n  vanectl txn <<'EOF'\n  value(\"/app/mode\") = \"blue\"\n\n  \
                      put /app/mode green\n\n  get /app/mode\n\n  EOF\n  \
                      vanectl txn --file change.txn -w json\n  vanectl txn -i      (prompts for each section)"
    )]
    Txn(TxnArgs),
    /// Watches events stream on keys or prefixes
    #[command(
        after_help = "Examples:\n  vanectl watch foo\n  vanectl watch /app/ --prefix --rev=1 --prev-kv\n  \
                            vanectl watch foo --max-events=1          (wait for one change)\n  \
                            vanectl watch /app/ --prefix -- sh -c 'echo $ETCD_WATCH_KEY changed'\n  \
                            vanectl watch -i    (then type: watch foo)"
    )]
    Watch(WatchArgs),
    /// Compacts the event history in the cluster
    #[command(
        after_help = "Examples:\n  vanectl compaction 1234\n  vanectl compaction 1234 --physical"
    )]
    Compaction(CompactionArgs),
    /// Lease related commands
    #[command(subcommand)]
    Lease(LeaseCommand),
    /// Membership related commands
    #[command(subcommand)]
    Member(MemberCommand),
    /// Endpoint related commands
    #[command(subcommand)]
    Endpoint(EndpointCommand),
    /// Manages cluster snapshots
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Enable or disable authentication
    #[command(subcommand)]
    Auth(AuthCommand),
    /// User related commands
    #[command(subcommand)]
    User(UserCommand),
    /// Role related commands
    #[command(subcommand)]
    Role(RoleCommand),
    /// Namespaces: key prefixes governed by a JSON Schema and an approval policy
    #[command(subcommand, name = "ns")]
    Namespace(NamespaceCommand),
    /// Checks values against the schema of their namespace
    #[command(subcommand)]
    Schema(SchemaCommand),
    /// Change requests: how changes reach a namespace that requires approvals
    #[command(subcommand, name = "cr")]
    Change(ChangeCommand),
    /// The audit trail of governed keys
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Lists every version of a governed key with its revision, time, author and path
    #[command(after_help = "Example:\n  vanectl history /flags/dark-mode")]
    History {
        /// The key
        key: String,
    },
    /// Shows how a governed key's JSON value changed between two revisions
    #[command(after_help = "Example:\n  vanectl diff /db/pool 12 40")]
    Diff {
        /// The key
        key: String,
        /// The older revision
        from: i64,
        /// The newer revision
        to: i64,
    },
    /// Resolves a key for an environment: its most specific layer, else the schema default
    #[command(
        after_help = "Environment E of a namespace with prefix P keeps its values under P + E + \"/\".\n\n\
                            Example:\n  vanectl resolve app db/pool --env prod"
    )]
    Resolve {
        /// The namespace
        namespace: String,
        /// The key, relative to the environment
        key: String,
        /// The environment
        #[arg(long)]
        env: String,
    },
    /// Lists the keys whose resolved values differ between two environments
    #[command(
        name = "diff-env",
        after_help = "Example:\n  vanectl diff-env app staging prod"
    )]
    DiffEnv {
        /// The namespace
        namespace: String,
        /// One environment
        from: String,
        /// The other
        to: String,
    },
    /// Writes a governed key's value at an older revision back, as a new change request
    #[command(
        after_help = "Example:\n  vanectl rollback /flags/dark-mode --to 12 -m 'dark mode broke checkout'"
    )]
    Rollback {
        /// The key
        key: String,
        /// The revision whose value to restore
        #[arg(long = "to")]
        to: i64,
        /// Why
        #[arg(short = 'm', long, default_value = "")]
        description: String,
    },
    /// Previews a change without making it: the keys it touches, whether each would be
    /// accepted, and the live watchers on every member that would receive it
    #[command(subcommand)]
    Impact(ImpactCommand),
    /// Prints the version of vanectl
    #[command(after_help = "Example:\n  vanectl version")]
    Version,
    /// Prints a shell completion script
    #[command(after_help = "Examples:\n  source <(vanectl completion bash)\n  \
                            vanectl completion zsh > \"${fpath[1]}/_vanectl\"\n  \
                            vanectl completion fish > ~/.config/fish/completions/vanectl.fish")]
    Completion(CompletionArgs),
}

/// `auth ...`.
#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Enables authentication
    #[command(
        after_help = "Example (a root user with the root role must exist):\n  \
                            vanectl user add root\n  vanectl user grant-role root root\n  \
                            vanectl auth enable"
    )]
    Enable,
    /// Disables authentication
    #[command(after_help = "Example:\n  vanectl --user root auth disable")]
    Disable,
    /// Returns authentication status
    #[command(after_help = "Example:\n  vanectl --user root auth status")]
    Status,
}

/// etcdctl's `--interactive` of `user add` and `user passwd`: a Go-style boolean, true
/// when given bare.
#[derive(Clone, Copy, Debug, Args)]
pub struct PasswordPrompt {
    /// Read password from the terminal (false: read it from stdin)
    #[arg(
        long = "interactive",
        default_value = "true",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub on_terminal: bool,
}

/// `user ...`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Adds a new user
    #[command(
        after_help = "Examples:\n  vanectl user add alice            (asks for the password)\n  \
                            vanectl user add alice:s3cret\n  \
                            echo s3cret | vanectl user add alice --interactive=false\n  \
                            vanectl user add ci-bot --no-password   (client certificate only)"
    )]
    Add {
        /// The user name, or user:password
        name: String,
        #[command(flatten)]
        interactive: PasswordPrompt,
        /// Supply password from the command line flag
        #[arg(long)]
        new_user_password: Option<String>,
        /// Create a user without password (CN based auth only)
        #[arg(long)]
        no_password: bool,
    },
    /// Deletes a user
    #[command(after_help = "Example:\n  vanectl user delete alice")]
    Delete {
        /// The user name
        name: String,
    },
    /// Gets detailed information of a user
    #[command(
        after_help = "Examples:\n  vanectl user get alice\n  vanectl user get alice --detail"
    )]
    Get {
        /// The user name
        name: String,
        /// Show permissions of roles granted to the user
        #[arg(long)]
        detail: bool,
    },
    /// Lists all users
    #[command(after_help = "Example:\n  vanectl user list")]
    List,
    /// Changes password of user
    #[command(after_help = "Examples:\n  vanectl user passwd alice\n  \
                            echo n3w | vanectl user passwd alice --interactive=false")]
    Passwd {
        /// The user name
        name: String,
        #[command(flatten)]
        interactive: PasswordPrompt,
    },
    /// Grants a role to a user
    #[command(after_help = "Example:\n  vanectl user grant-role alice app-reader")]
    GrantRole {
        /// The user name
        name: String,
        /// The role name
        role: String,
    },
    /// Revokes a role from a user
    #[command(after_help = "Example:\n  vanectl user revoke-role alice app-reader")]
    RevokeRole {
        /// The user name
        name: String,
        /// The role name
        role: String,
    },
}

/// `role ...`.
#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Adds a new role
    #[command(after_help = "Example:\n  vanectl role add app-reader")]
    Add {
        /// The role name
        name: String,
    },
    /// Deletes a role
    #[command(after_help = "Example:\n  vanectl role delete app-reader")]
    Delete {
        /// The role name
        name: String,
    },
    /// Gets detailed information of a role
    #[command(after_help = "Example:\n  vanectl role get app-reader")]
    Get {
        /// The role name
        name: String,
    },
    /// Lists all roles
    #[command(after_help = "Example:\n  vanectl role list")]
    List,
    /// Grants a key to a role
    #[command(
        after_help = "Examples:\n  vanectl role grant-permission app-reader read /app/ --prefix\n  \
                            vanectl role grant-permission app-writer readwrite /app/mode\n  \
                            vanectl role grant-permission ops write a z     (keys from a up to z)"
    )]
    GrantPermission {
        /// The role name
        name: String,
        /// read, write or readwrite
        perm_type: String,
        /// The key, or the start of the range
        #[arg(value_name = "KEY")]
        perm_key: String,
        /// The end of the range (exclusive)
        #[arg(value_name = "RANGE_END")]
        perm_range_end: Option<String>,
        /// Grant a prefix permission
        #[arg(long)]
        prefix: bool,
        /// Grant a permission of keys that are greater than or equal to the given key using byte compare
        #[arg(long)]
        from_key: bool,
    },
    /// Revokes a key from a role
    #[command(
        after_help = "Examples:\n  vanectl role revoke-permission app-reader /app/ --prefix\n  \
                            vanectl role revoke-permission app-writer /app/mode"
    )]
    RevokePermission {
        /// The role name
        name: String,
        /// The key, or the start of the range
        #[arg(value_name = "KEY")]
        perm_key: String,
        /// The end of the range (exclusive)
        #[arg(value_name = "RANGE_END")]
        perm_range_end: Option<String>,
        /// Revoke a prefix permission
        #[arg(long)]
        prefix: bool,
        /// Revoke a permission of keys that are greater than or equal to the given key using byte compare
        #[arg(long)]
        from_key: bool,
    },
}

/// The policy flags of `ns create` and `ns update`.
#[derive(Clone, Debug, Default, Args)]
pub struct NamespacePolicyArgs {
    /// A JSON Schema (draft 2020-12) file every value under the prefix must satisfy
    #[arg(long)]
    pub schema: Option<std::path::PathBuf>,
    /// Approvals a change needs; with more than 0 direct writes are refused
    #[arg(long)]
    pub approvals: Option<u32>,
    /// A role whose members may approve (repeat for several)
    #[arg(long = "approver-role")]
    pub approver_roles: Vec<String>,
    /// Let the author of a change approve it
    #[arg(long)]
    pub allow_self_approval: Option<bool>,
    /// A role that may apply changes without approvals, giving a reason
    #[arg(long)]
    pub break_glass_role: Option<String>,
    /// An environment, as NAME or NAME:INHERITS (repeat; e.g. base, staging:base, prod:staging)
    #[arg(long = "env")]
    pub environments: Vec<String>,
    /// An owner (repeat for several)
    #[arg(long = "owner")]
    pub owners: Vec<String>,
    /// What the namespace holds
    #[arg(long)]
    pub description: Option<String>,
    /// Values are sensitive: refusals do not echo them
    #[arg(long)]
    pub sensitive: Option<bool>,
}

/// `ns ...`.
#[derive(Debug, Subcommand)]
pub enum NamespaceCommand {
    /// Creates a namespace claiming a key prefix
    #[command(
        after_help = "Examples:\n  vanectl ns create payments --prefix /payments/ --schema payments.schema.json\n  \
                            vanectl ns create flags --prefix /flags/ --approvals 2 --approver-role reviewers \\\n      \
                            --env base --env staging:base --env prod:staging"
    )]
    Create {
        /// The namespace's name
        name: String,
        /// The key prefix it governs
        #[arg(long)]
        prefix: String,
        /// The policy
        #[command(flatten)]
        policy: NamespacePolicyArgs,
    },
    /// Changes a namespace's policy (flags not given keep their value)
    #[command(after_help = "Examples:\n  vanectl ns update flags --approvals 1\n  \
                            vanectl ns update payments --schema v2.schema.json --force")]
    Update {
        /// The namespace's name
        name: String,
        /// The policy changes
        #[command(flatten)]
        policy: NamespacePolicyArgs,
        /// Remove the schema
        #[arg(long, conflicts_with = "schema")]
        no_schema: bool,
        /// Accept a schema that existing values do not satisfy (they are listed)
        #[arg(long)]
        force: bool,
    },
    /// Shows a namespace
    #[command(
        after_help = "Examples:\n  vanectl ns get payments\n  vanectl ns get payments -w json"
    )]
    Get {
        /// The namespace's name
        name: String,
        /// Print only the schema
        #[arg(long)]
        schema: bool,
    },
    /// Lists namespaces
    #[command(after_help = "Example:\n  vanectl ns list")]
    List,
    /// Deletes a namespace that has no keys left
    #[command(after_help = "Example:\n  vanectl ns delete payments")]
    Delete {
        /// The namespace's name
        name: String,
    },
}

/// `--state` of `cr list`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ChangeStateArg {
    /// Waiting for approvals.
    Open,
    /// Applied.
    Applied,
    /// Rejected by an approver.
    Rejected,
    /// Withdrawn by its author.
    Cancelled,
    /// A key moved since it was opened; rebase it.
    Conflicted,
    /// Approved, waiting for its scheduled time.
    Approved,
}

/// `cr ...`.
#[derive(Debug, Subcommand)]
pub enum ChangeCommand {
    /// Opens a change request (each key's current revision becomes its base)
    #[command(
        after_help = "Examples:\n  vanectl cr create flags --put /flags/dark-mode=on -m 'dark mode for everyone'\n  \
                            vanectl cr create flags --put /flags/a=1 --delete /flags/old"
    )]
    Create {
        /// The namespace
        namespace: String,
        /// A key to put, as KEY=VALUE (repeat for several)
        #[arg(long = "put", value_name = "KEY=VALUE")]
        puts: Vec<String>,
        /// A key to delete (repeat for several)
        #[arg(long = "delete", value_name = "KEY")]
        deletes: Vec<String>,
        /// The --put values are YAML: the request carries the JSON they stand for
        #[arg(long)]
        yaml: bool,
        /// What the change is for
        #[arg(short = 'm', long, default_value = "")]
        description: String,
        /// Once approved, apply this long after now (e.g. 30m), not at once
        #[arg(long, value_parser = parse_duration)]
        apply_in: Option<Duration>,
    },
    /// Approves a change request; the approval that meets the policy applies it
    #[command(after_help = "Example:\n  vanectl --user bob cr approve 42")]
    Approve {
        /// The change request's id
        id: u64,
    },
    /// Rejects a change request
    #[command(
        after_help = "Example:\n  vanectl --user bob cr reject 42 --reason 'needs a rollout plan'"
    )]
    Reject {
        /// The change request's id
        id: u64,
        /// Why
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Withdraws your change request
    #[command(after_help = "Example:\n  vanectl cr cancel 42")]
    Cancel {
        /// The change request's id
        id: u64,
    },
    /// Takes the keys' current revisions as a conflicted request's new base (approvals are dropped)
    #[command(after_help = "Example:\n  vanectl cr rebase 42")]
    Rebase {
        /// The change request's id
        id: u64,
    },
    /// Applies a change request without its approvals (the namespace's break-glass role)
    #[command(
        after_help = "Example:\n  vanectl --user oncall cr break-glass 42 --reason 'INC-1234: payments down'"
    )]
    BreakGlass {
        /// The change request's id
        id: u64,
        /// Why (kept on the request, which stays listed for review)
        #[arg(long)]
        reason: String,
    },
    /// Shows a change request
    #[command(after_help = "Example:\n  vanectl cr get 42 -w json")]
    Get {
        /// The change request's id
        id: u64,
    },
    /// Lists change requests, newest first
    #[command(
        after_help = "Examples:\n  vanectl cr list\n  vanectl cr list --ns flags --state open"
    )]
    List {
        /// Only this namespace's
        #[arg(long = "ns")]
        namespace: Option<String>,
        /// Only those in this state
        #[arg(long, value_enum)]
        state: Option<ChangeStateArg>,
    },
}

/// `audit ...`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Lists audit records, oldest first
    #[command(
        after_help = "Examples:\n  vanectl audit list --ns flags\n  vanectl audit list /flags/ --prefix --by alice --limit 20"
    )]
    List {
        /// Only this namespace's
        #[arg(long = "ns")]
        namespace: Option<String>,
        /// Only this key's (with --prefix: every key starting with it)
        key: Option<String>,
        /// KEY is a prefix
        #[arg(long)]
        prefix: bool,
        /// Only changes by this user
        #[arg(long = "by")]
        principal: Option<String>,
        /// Only changes at or after this time (ms since the Unix epoch)
        #[arg(long)]
        since_ms: Option<i64>,
        /// Only changes at or before this time (ms since the Unix epoch)
        #[arg(long)]
        until_ms: Option<i64>,
        /// At most this many, the newest
        #[arg(long, default_value_t = 0)]
        limit: u32,
    },
    /// Recomputes the hash chain; names the first record that was altered
    #[command(after_help = "Example:\n  vanectl audit verify")]
    Verify,
}

/// `schema ...`.
#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Whether a value would be accepted at a key now (nothing is written)
    #[command(
        after_help = "Examples:\n  vanectl schema validate /payments/limits '{\"max\": 10}'\n  \
                            vanectl schema validate /payments/limits < limits.json"
    )]
    Validate {
        /// The key
        key: OsString,
        /// The value (read from stdin when omitted)
        value: Option<OsString>,
        /// The value is YAML: check the JSON it would be stored as
        #[arg(long)]
        yaml: bool,
    },
}

/// `impact`: what a change would do; nothing is written. Exits 1 when any of its
/// operations would be refused.
#[derive(Clone, Debug, Subcommand)]
pub enum ImpactCommand {
    /// A put of a value at a key
    #[command(
        after_help = "Examples:\n  vanectl impact put /flags/dark-mode '{\"on\": true}'\n  \
                            vanectl impact put /db/pool --yaml < pool.yaml"
    )]
    Put {
        /// The key
        key: OsString,
        /// The value (read from stdin when omitted)
        value: Option<OsString>,
        /// The value is YAML: preview it as the JSON it would be stored as
        #[arg(long)]
        yaml: bool,
        /// Watchers listed at most (0: the server's default, 1000)
        #[arg(long, default_value_t = 0)]
        limit: u32,
    },
    /// A delete of a key or a range
    #[command(
        after_help = "Examples:\n  vanectl impact del /flags/old\n  vanectl impact del /flags/ --prefix"
    )]
    Del {
        /// The key, or the start of the range
        key: OsString,
        /// The end of the range (exclusive)
        range_end: Option<OsString>,
        /// Every key with this prefix
        #[arg(long)]
        prefix: bool,
        /// Every key from this one up, by byte order
        #[arg(long)]
        from_key: bool,
        /// Watchers listed at most (0: the server's default, 1000)
        #[arg(long, default_value_t = 0)]
        limit: u32,
    },
    /// A change request, as if it applied now
    #[command(after_help = "Example:\n  vanectl impact cr 42")]
    Cr {
        /// The change request's id
        id: u64,
        /// Watchers listed at most (0: the server's default, 1000)
        #[arg(long, default_value_t = 0)]
        limit: u32,
    },
}

/// `get`.
#[derive(Clone, Debug, Args)]
pub struct GetArgs {
    /// The key, or the start of the range
    pub key: OsString,
    /// The end of the range (exclusive)
    pub range_end: Option<OsString>,
    /// Get keys with matching prefix
    #[arg(long)]
    pub prefix: bool,
    /// Get keys that are greater than or equal to the given key using byte compare
    #[arg(long)]
    pub from_key: bool,
    /// Specify the kv revision
    #[arg(long, default_value_t = 0)]
    pub rev: i64,
    /// Maximum number of results
    #[arg(long, default_value_t = 0)]
    pub limit: i64,
    /// Get only the keys
    #[arg(long)]
    pub keys_only: bool,
    /// Only write values when using the "simple" output format
    #[arg(long)]
    pub print_value_only: bool,
    /// Get only the count
    #[arg(long)]
    pub count_only: bool,
    /// Sort target
    #[arg(long, value_enum, ignore_case = true)]
    pub sort_by: Option<SortTarget>,
    /// Order of results (ASCEND by default)
    #[arg(long, value_enum, ignore_case = true)]
    pub order: Option<SortOrder>,
    /// Linearizable (l) or Serializable (s)
    #[arg(long, value_enum, default_value = "l")]
    pub consistency: Consistency,
}

/// `--sort-by`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "UPPER")]
pub enum SortTarget {
    /// By create revision.
    Create,
    /// By key (the default order).
    Key,
    /// By modification revision.
    Modify,
    /// By value.
    Value,
    /// By version.
    Version,
}

/// `--order`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "UPPER")]
pub enum SortOrder {
    /// Smallest first.
    Ascend,
    /// Largest first.
    Descend,
}

/// `--consistency`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Consistency {
    /// Linearizable: confirmed with a quorum.
    #[value(name = "l")]
    Linearizable,
    /// Serializable: the member's local state, possibly stale.
    #[value(name = "s")]
    Serializable,
}

/// `put`.
#[derive(Clone, Debug, Args)]
pub struct PutArgs {
    /// The key
    pub key: OsString,
    /// The value (read from stdin when omitted)
    pub value: Option<OsString>,
    /// Lease ID (in hexadecimal) to attach to the key
    #[arg(long, default_value = "0", value_parser = parse_lease_id)]
    pub lease: i64,
    /// Return the previous key-value pair before modification
    #[arg(long)]
    pub prev_kv: bool,
    /// Updates the key using its current value
    #[arg(long)]
    pub ignore_value: bool,
    /// Updates the key using its current lease
    #[arg(long)]
    pub ignore_lease: bool,
    /// The value is YAML: store the JSON it stands for (values under a namespace are JSON)
    #[arg(long, conflicts_with = "ignore_value")]
    pub yaml: bool,
}

/// `del`.
#[derive(Clone, Debug, Args)]
pub struct DelArgs {
    /// The key, or the start of the range
    pub key: OsString,
    /// The end of the range (exclusive)
    pub range_end: Option<OsString>,
    /// Delete keys with matching prefix
    #[arg(long)]
    pub prefix: bool,
    /// Return deleted key-value pairs
    #[arg(long)]
    pub prev_kv: bool,
    /// Delete keys that are greater than or equal to the given key using byte compare
    #[arg(long)]
    pub from_key: bool,
}

/// `txn`.
#[derive(Clone, Debug, Args)]
pub struct TxnArgs {
    /// Input transaction in interactive mode
    #[arg(short, long)]
    pub interactive: bool,
    /// Read the transaction from this file instead of stdin
    #[arg(long, conflicts_with = "interactive")]
    pub file: Option<std::path::PathBuf>,
}

/// `watch`.
#[derive(Clone, Debug, Args)]
pub struct WatchArgs {
    /// The key or prefix
    pub key: Option<OsString>,
    /// The end of the range (exclusive)
    pub range_end: Option<OsString>,
    /// Interactive mode: read `watch [options] <key> [range_end]` lines from stdin
    #[arg(short, long)]
    pub interactive: bool,
    /// Watch on a prefix if prefix is set
    #[arg(long)]
    pub prefix: bool,
    /// Revision to start watching
    #[arg(long, default_value_t = 0)]
    pub rev: i64,
    /// Get the previous key-value pair before the event happens
    #[arg(long)]
    pub prev_kv: bool,
    /// Get periodic watch progress notification from server
    #[arg(long)]
    pub progress_notify: bool,
    /// Exit (status 0) after this many events (0: never)
    #[arg(long, default_value_t = 0)]
    pub max_events: u64,
    /// Command to run for every event, with ETCD_WATCH_* variables set
    #[arg(last = true)]
    pub exec: Vec<OsString>,
}

/// `compaction`.
#[derive(Clone, Debug, Args)]
pub struct CompactionArgs {
    /// The revision to compact to
    pub revision: i64,
    /// Wait until the compaction is physically applied to the members' storage
    #[arg(long)]
    pub physical: bool,
}

/// `lease ...`.
#[derive(Clone, Debug, Subcommand)]
pub enum LeaseCommand {
    /// Creates leases
    #[command(after_help = "Example:\n  vanectl lease grant 60")]
    Grant {
        /// Time to live, in seconds
        ttl: i64,
    },
    /// Revokes leases
    #[command(after_help = "Example:\n  vanectl lease revoke 694d7b2a1b8e4f05")]
    Revoke {
        /// Lease ID (hexadecimal)
        #[arg(value_parser = parse_lease_id)]
        id: i64,
    },
    /// Get lease information
    #[command(after_help = "Example:\n  vanectl lease timetolive 694d7b2a1b8e4f05 --keys")]
    Timetolive {
        /// Lease ID (hexadecimal)
        #[arg(value_parser = parse_lease_id)]
        id: i64,
        /// Get keys attached to this lease
        #[arg(long)]
        keys: bool,
    },
    /// List all active leases
    #[command(after_help = "Example:\n  vanectl lease list")]
    List,
    /// Keeps leases alive (renew)
    #[command(
        after_help = "Examples:\n  vanectl lease keep-alive 694d7b2a1b8e4f05\n  \
                            vanectl lease keep-alive --once 694d7b2a1b8e4f05"
    )]
    KeepAlive {
        /// Lease ID (hexadecimal)
        #[arg(value_parser = parse_lease_id)]
        id: i64,
        /// Resets the keep-alive time to its original value and exits immediately
        #[arg(long)]
        once: bool,
    },
}

/// `member ...`.
#[derive(Clone, Debug, Subcommand)]
pub enum MemberCommand {
    /// Adds a member into the cluster
    #[command(
        after_help = "Example:\n  vanectl member add n4 --peer-urls=http://10.0.0.4:2380 --learner"
    )]
    Add {
        /// The new member's name
        name: String,
        /// Comma separated peer URLs for the new member
        #[arg(long, value_delimiter = ',', required = true)]
        peer_urls: Vec<String>,
        /// Indicates if the new member is raft learner
        #[arg(long)]
        learner: bool,
    },
    /// Removes a member from the cluster
    #[command(after_help = "Example:\n  vanectl member remove 8211f1d0f64f3269")]
    Remove {
        /// Member ID (hexadecimal)
        #[arg(value_parser = parse_member_id)]
        id: u64,
    },
    /// Updates a member in the cluster
    #[command(
        after_help = "Example:\n  vanectl member update 8211f1d0f64f3269 --peer-urls=http://10.0.0.9:2380"
    )]
    Update {
        /// Member ID (hexadecimal)
        #[arg(value_parser = parse_member_id)]
        id: u64,
        /// Comma separated peer URLs for the updated member
        #[arg(long, value_delimiter = ',', required = true)]
        peer_urls: Vec<String>,
    },
    /// Promotes a non-voting member in the cluster
    #[command(after_help = "Example:\n  vanectl member promote 8211f1d0f64f3269")]
    Promote {
        /// Member ID (hexadecimal)
        #[arg(value_parser = parse_member_id)]
        id: u64,
    },
    /// Lists all members in the cluster
    #[command(after_help = "Examples:\n  vanectl member list\n  vanectl member list -w table")]
    List,
}

/// `endpoint ...`.
#[derive(Clone, Debug, Subcommand)]
pub enum EndpointCommand {
    /// Prints out the status of endpoints specified in `--endpoints` flag
    #[command(
        after_help = "Examples:\n  vanectl endpoint status -w table\n  vanectl endpoint status --cluster"
    )]
    Status {
        /// Use all endpoints from the cluster member list
        #[arg(long)]
        cluster: bool,
    },
    /// Checks the healthiness of endpoints specified in `--endpoints` flag
    #[command(
        after_help = "Examples:\n  vanectl endpoint health\n  vanectl endpoint health --cluster -w table"
    )]
    Health {
        /// Use all endpoints from the cluster member list
        #[arg(long)]
        cluster: bool,
    },
}

/// `snapshot ...`.
#[derive(Clone, Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Stores a snapshot of a member to a file
    #[command(after_help = "Example:\n  vanectl --endpoints=10.0.0.1:2379 snapshot save backup.db")]
    Save {
        /// Where to write the snapshot
        file: std::path::PathBuf,
    },
}

/// `completion`.
#[derive(Clone, Debug, Args)]
pub struct CompletionArgs {
    /// The shell to print a completion script for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// A lease ID as etcdctl prints it: hexadecimal.
pub fn parse_lease_id(text: &str) -> Result<i64, String> {
    i64::from_str_radix(text, 16)
        .map_err(|e| format!("bad lease ID {text:?} ({e}), expecting ID in hex"))
}

/// A member ID as etcdctl prints it: hexadecimal.
pub fn parse_member_id(text: &str) -> Result<u64, String> {
    u64::from_str_radix(text, 16)
        .map_err(|e| format!("bad member ID {text:?} ({e}), expecting ID in hex"))
}

/// The clap command, for completions and help.
pub fn command() -> clap::Command {
    Cli::command()
}

/// Parses the process arguments. Help and version are printed here (exit 0); a bad
/// command line becomes one `Error:` line and etcdctl's exit code: 1 for an unknown flag,
/// 128 for missing or malformed arguments.
pub fn parse() -> Result<Cli, ExitCode> {
    parse_from(std::env::args_os())
}

/// [`parse`] for any argument list.
pub fn parse_from<I, T>(args: I) -> Result<Cli, ExitCode>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match Cli::try_parse_from(args) {
        Ok(cli) => Ok(cli),
        Err(error) => match error.kind() {
            ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                let _ = error.print();
                Err(ExitCode::SUCCESS)
            }
            kind => {
                eprintln!("Error: {}", one_line(&error));
                let output_format = error
                    .get(clap::error::ContextKind::InvalidArg)
                    .is_some_and(|arg| arg.to_string().contains("--write-out"));
                // etcdctl: an unknown output format is an unsupported feature (exit 4).
                Err(ExitCode::from(if output_format {
                    4
                } else {
                    exit_code_of(kind)
                }))
            }
        },
    }
}

/// etcdctl's exit code for a bad command line.
fn exit_code_of(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::UnknownArgument | ErrorKind::InvalidSubcommand => 1,
        _ => 128,
    }
}

/// Clap's message in one line: its first line, and where to find the usage.
pub fn one_line(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let mut lines = rendered.lines();
    let mut first = lines
        .next()
        .unwrap_or("bad command line")
        .trim_start_matches("error: ")
        .to_string();
    if first.ends_with(':') {
        // "the following required arguments were not provided:" lists them below.
        let listed: Vec<&str> = lines
            .take_while(|l| l.starts_with(char::is_whitespace) && !l.trim().is_empty())
            .map(str::trim)
            .collect();
        first = format!("{} {}", first, listed.join(", "));
    }
    let usage = rendered
        .lines()
        .find_map(|l| l.trim().strip_prefix("Usage: "))
        .map(str::to_string);
    match usage {
        Some(usage) => {
            let verb = usage
                .split(['[', '<'])
                .next()
                .unwrap_or("vanectl")
                .trim()
                .to_string();
            format!("{first} (usage: {usage}; see '{verb} --help')")
        }
        None => first,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(args: &[&str]) -> Cli {
        Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    #[test]
    fn the_command_tree_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn global_flags_go_before_or_after_the_verb() {
        let cli = parse_ok(&[
            "vanectl",
            "get",
            "foo",
            "-w",
            "json",
            "--endpoints=a:1,b:2",
            "--command-timeout=1m30s",
        ]);
        assert_eq!(cli.global.write_out, OutputFormat::Json);
        assert_eq!(cli.global.endpoints, vec!["a:1", "b:2"]);
        assert_eq!(cli.global.command_timeout, Duration::from_secs(90));
        assert_eq!(cli.global.dial_timeout, Duration::from_secs(2));
        let cli = parse_ok(&["vanectl", "--hex", "put", "foo", "bar", "--lease=1f"]);
        assert!(cli.global.hex);
        match cli.command {
            Command::Put(put) => assert_eq!(put.lease, 0x1f),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn etcdctl_spellings_are_accepted() {
        match parse_ok(&[
            "vanectl",
            "get",
            "fo",
            "--prefix",
            "--sort-by=modify",
            "--order=DESCEND",
        ])
        .command
        {
            Command::Get(get) => {
                assert_eq!(get.sort_by, Some(SortTarget::Modify));
                assert_eq!(get.order, Some(SortOrder::Descend));
                assert_eq!(get.consistency, Consistency::Linearizable);
            }
            other => panic!("{other:?}"),
        }
        match parse_ok(&["vanectl", "watch", "foo", "--rev", "3", "--", "echo", "hi"]).command {
            Command::Watch(watch) => {
                assert_eq!(watch.key.as_deref(), Some(std::ffi::OsStr::new("foo")));
                assert_eq!(
                    watch.exec,
                    vec![OsString::from("echo"), OsString::from("hi")]
                );
            }
            other => panic!("{other:?}"),
        }
        match parse_ok(&[
            "vanectl",
            "member",
            "add",
            "n4",
            "--peer-urls=http://a:1,http://b:2",
        ])
        .command
        {
            Command::Member(MemberCommand::Add { peer_urls, .. }) => {
                assert_eq!(peer_urls, vec!["http://a:1", "http://b:2"])
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_command_lines_become_one_line() {
        let error = Cli::try_parse_from(["vanectl", "get", "foo", "--bogus"]).unwrap_err();
        assert_eq!(exit_code_of(error.kind()), 1);
        let line = one_line(&error);
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("--bogus"), "{line}");
        assert!(line.contains("see 'vanectl get --help'"), "{line}");

        let error = Cli::try_parse_from(["vanectl", "lease", "revoke", "zz"]).unwrap_err();
        assert_eq!(exit_code_of(error.kind()), 128);
        assert!(one_line(&error).contains("expecting ID in hex"));

        let error = Cli::try_parse_from(["vanectl", "get"]).unwrap_err();
        assert_eq!(exit_code_of(error.kind()), 128);
        assert!(
            one_line(&error).contains("not provided: <KEY> (usage:"),
            "{}",
            one_line(&error)
        );
    }
}
