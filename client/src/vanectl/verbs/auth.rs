//! `auth enable|disable|status`, `user ...` and `role ...`: etcd's Auth service, with
//! etcdctl 3.4's arguments, prompts and output.

use std::io::BufRead as _;

use vane_client::txn::prefix_range_end;
use vane_proto::authpb::permission::Type as PermType;
use vane_proto::authpb::{Permission, UserAddOptions};
use vane_proto::etcdserverpb::{
    AuthDisableRequest, AuthEnableRequest, AuthRoleAddRequest, AuthRoleDeleteRequest,
    AuthRoleGetRequest, AuthRoleGrantPermissionRequest, AuthRoleListRequest,
    AuthRoleRevokePermissionRequest, AuthStatusRequest, AuthUserAddRequest,
    AuthUserChangePasswordRequest, AuthUserDeleteRequest, AuthUserGetRequest,
    AuthUserGrantRoleRequest, AuthUserListRequest, AuthUserRevokeRoleRequest,
};

use super::super::cli::{AuthCommand, RoleCommand, UserCommand};
use super::super::exit::{self, CliError};
use super::super::output::{Report, ReportKind};
use super::{Context, write_stdout};

/// etcd's refusal of AuthEnable while the root user lacks the root role.
const ROOT_ROLE_MISSING: &str = "etcdserver: root user does not have root role";
/// etcd's refusal of RoleAdd for a role that exists.
const ROLE_EXISTS: &str = "etcdserver: role name already exists";

/// `auth ...`.
pub async fn auth(context: &Context, command: AuthCommand) -> Result<(), CliError> {
    match command {
        AuthCommand::Enable => {
            context.printer.check_supported(ReportKind::AuthToggled)?;
            let client = context.connect().await?;
            // As etcdctl: a root user without the root role gets it, then enable again.
            let mut granted = false;
            loop {
                match client.auth_enable(AuthEnableRequest {}).await {
                    Ok(_) => break,
                    Err(e) if !granted && e.message() == ROOT_ROLE_MISSING => {
                        granted = true;
                        let role = AuthRoleAddRequest {
                            name: "root".to_string(),
                        };
                        match client.role_add(role).await {
                            Ok(_) => {}
                            Err(e) if e.message() == ROLE_EXISTS => {}
                            Err(e) => return Err(exit::from_client(e)),
                        }
                        client
                            .user_grant_role(AuthUserGrantRoleRequest {
                                user: "root".to_string(),
                                role: "root".to_string(),
                            })
                            .await
                            .map_err(exit::from_client)?;
                    }
                    Err(e) => return Err(exit::from_client(e)),
                }
            }
            context.emit(&Report::AuthToggled { enabled: true })
        }
        AuthCommand::Disable => {
            context.printer.check_supported(ReportKind::AuthToggled)?;
            let client = context.connect().await?;
            client
                .auth_disable(AuthDisableRequest {})
                .await
                .map_err(exit::from_client)?;
            context.emit(&Report::AuthToggled { enabled: false })
        }
        AuthCommand::Status => {
            context.printer.check_supported(ReportKind::AuthStatus)?;
            let client = context.connect().await?;
            let response = client
                .auth_status(AuthStatusRequest {})
                .await
                .map_err(exit::from_client)?;
            context.emit(&Report::AuthStatus(&response))
        }
    }
}

/// `user ...`.
pub async fn user(context: &Context, command: UserCommand) -> Result<(), CliError> {
    match command {
        UserCommand::Add {
            name,
            interactive,
            new_user_password,
            no_password,
        } => {
            context.printer.check_supported(ReportKind::AuthChanged)?;
            let (name, password) = if no_password {
                (name, String::new())
            } else if let Some(password) = new_user_password.filter(|p| !p.is_empty()) {
                (name, password)
            } else if let Some((user, password)) = name.split_once(':') {
                if user.is_empty() {
                    return Err(CliError::bad_args("empty user name is not allowed"));
                }
                (user.to_string(), password.to_string())
            } else {
                let password = new_password(&name, interactive.on_terminal)?;
                (name, password)
            };
            let client = context.connect().await?;
            let response = client
                .user_add(AuthUserAddRequest {
                    name: name.clone(),
                    password,
                    options: Some(UserAddOptions { no_password }),
                })
                .await
                .map_err(exit::from_client)?;
            changed(
                context,
                response.header.as_ref(),
                format!("User {name} created"),
            )
        }
        UserCommand::Delete { name } => {
            context.printer.check_supported(ReportKind::AuthChanged)?;
            let client = context.connect().await?;
            let response = client
                .user_delete(AuthUserDeleteRequest { name: name.clone() })
                .await
                .map_err(exit::from_client)?;
            changed(
                context,
                response.header.as_ref(),
                format!("User {name} deleted"),
            )
        }
        UserCommand::Get { name, detail } => {
            let kind = if detail {
                ReportKind::RoleGet
            } else {
                ReportKind::UserGet
            };
            context.printer.check_supported(kind)?;
            let client = context.connect().await?;
            let response = client
                .user_get(AuthUserGetRequest { name: name.clone() })
                .await
                .map_err(exit::from_client)?;
            if !detail {
                return context.emit(&Report::UserGet {
                    name: &name,
                    response: &response,
                });
            }
            // As etcdctl: the user's name, then each role as `role get` prints it.
            write_stdout(format!("User: {name}\n").as_bytes())?;
            for role in &response.roles {
                let role_response = client
                    .role_get(AuthRoleGetRequest { role: role.clone() })
                    .await
                    .map_err(exit::from_client)?;
                write_stdout(b"\n")?;
                context.emit(&Report::RoleGet {
                    name: role,
                    response: &role_response,
                })?;
            }
            Ok(())
        }
        UserCommand::List => {
            context.printer.check_supported(ReportKind::UserList)?;
            let client = context.connect().await?;
            let response = client
                .user_list(AuthUserListRequest {})
                .await
                .map_err(exit::from_client)?;
            context.emit(&Report::UserList(&response))
        }
        UserCommand::Passwd { name, interactive } => {
            context.printer.check_supported(ReportKind::AuthChanged)?;
            let password = new_password(&name, interactive.on_terminal)?;
            let client = context.connect().await?;
            let response = client
                .user_change_password(AuthUserChangePasswordRequest { name, password })
                .await
                .map_err(exit::from_client)?;
            changed(
                context,
                response.header.as_ref(),
                "Password updated".to_string(),
            )
        }
        UserCommand::GrantRole { name, role } => {
            context.printer.check_supported(ReportKind::AuthChanged)?;
            let client = context.connect().await?;
            let response = client
                .user_grant_role(AuthUserGrantRoleRequest {
                    user: name.clone(),
                    role: role.clone(),
                })
                .await
                .map_err(exit::from_client)?;
            let done = format!("Role {role} is granted to user {name}");
            changed(context, response.header.as_ref(), done)
        }
        UserCommand::RevokeRole { name, role } => {
            context.printer.check_supported(ReportKind::AuthChanged)?;
            let client = context.connect().await?;
            let response = client
                .user_revoke_role(AuthUserRevokeRoleRequest {
                    name: name.clone(),
                    role: role.clone(),
                })
                .await
                .map_err(exit::from_client)?;
            let done = format!("Role {role} is revoked from user {name}");
            changed(context, response.header.as_ref(), done)
        }
    }
}

/// `role ...`.
pub async fn role(context: &Context, command: RoleCommand) -> Result<(), CliError> {
    match command {
        RoleCommand::Add { name } => {
            context.printer.check_supported(ReportKind::AuthChanged)?;
            let client = context.connect().await?;
            let response = client
                .role_add(AuthRoleAddRequest { name: name.clone() })
                .await
                .map_err(exit::from_client)?;
            changed(
                context,
                response.header.as_ref(),
                format!("Role {name} created"),
            )
        }
        RoleCommand::Delete { name } => {
            context.printer.check_supported(ReportKind::AuthChanged)?;
            let client = context.connect().await?;
            let response = client
                .role_delete(AuthRoleDeleteRequest { role: name.clone() })
                .await
                .map_err(exit::from_client)?;
            changed(
                context,
                response.header.as_ref(),
                format!("Role {name} deleted"),
            )
        }
        RoleCommand::Get { name } => {
            context.printer.check_supported(ReportKind::RoleGet)?;
            let client = context.connect().await?;
            let response = client
                .role_get(AuthRoleGetRequest { role: name.clone() })
                .await
                .map_err(exit::from_client)?;
            context.emit(&Report::RoleGet {
                name: &name,
                response: &response,
            })
        }
        RoleCommand::List => {
            context.printer.check_supported(ReportKind::RoleList)?;
            let client = context.connect().await?;
            let response = client
                .role_list(AuthRoleListRequest {})
                .await
                .map_err(exit::from_client)?;
            context.emit(&Report::RoleList(&response))
        }
        RoleCommand::GrantPermission {
            name,
            perm_type,
            perm_key,
            perm_range_end,
            prefix,
            from_key,
        } => {
            let perm_type = parse_perm_type(&perm_type)?;
            let (key, range_end) =
                perm_range(&perm_key, perm_range_end.as_deref(), prefix, from_key)?;
            context.printer.check_supported(ReportKind::AuthChanged)?;
            let client = context.connect().await?;
            let response = client
                .role_grant_permission(AuthRoleGrantPermissionRequest {
                    name: name.clone(),
                    perm: Some(Permission {
                        perm_type: perm_type as i32,
                        key,
                        range_end,
                    }),
                })
                .await
                .map_err(exit::from_client)?;
            changed(
                context,
                response.header.as_ref(),
                format!("Role {name} updated"),
            )
        }
        RoleCommand::RevokePermission {
            name,
            perm_key,
            perm_range_end,
            prefix,
            from_key,
        } => {
            let (key, range_end) =
                perm_range(&perm_key, perm_range_end.as_deref(), prefix, from_key)?;
            context.printer.check_supported(ReportKind::AuthChanged)?;
            let client = context.connect().await?;
            let response = client
                .role_revoke_permission(AuthRoleRevokePermissionRequest {
                    role: name.clone(),
                    key: key.clone(),
                    range_end: range_end.clone(),
                })
                .await
                .map_err(exit::from_client)?;
            // etcdctl names the key as typed and the range end as sent.
            let end = String::from_utf8_lossy(&range_end);
            let done = if range_end.is_empty() {
                format!("Permission of key {perm_key} is revoked from role {name}")
            } else if range_end == b"\0" {
                format!("Permission of range [{perm_key}, <open ended> is revoked from role {name}")
            } else {
                format!("Permission of range [{perm_key}, {end}) is revoked from role {name}")
            };
            changed(context, response.header.as_ref(), done)
        }
    }
}

fn changed(
    context: &Context,
    header: Option<&vane_proto::etcdserverpb::ResponseHeader>,
    done: String,
) -> Result<(), CliError> {
    context.emit(&Report::AuthChanged {
        header,
        done: &done,
    })
}

/// `read`, `write` or `readwrite`, in any case, as etcd's `StrToPermissionType`.
fn parse_perm_type(text: &str) -> Result<PermType, CliError> {
    match text.to_ascii_uppercase().as_str() {
        "READ" => Ok(PermType::Read),
        "WRITE" => Ok(PermType::Write),
        "READWRITE" => Ok(PermType::Readwrite),
        _ => Err(CliError::bad_args(format!(
            "invalid permission type: {text}"
        ))),
    }
}

/// The key and range end a permission covers, from the arguments and flags, by etcdctl's
/// rules: an empty key with `--prefix` or `--from-key` is every key.
fn perm_range(
    key: &str,
    range_end: Option<&str>,
    prefix: bool,
    from_key: bool,
) -> Result<(Vec<u8>, Vec<u8>), CliError> {
    let exclusive = || CliError::bad_args("--from-key and --prefix flags are mutually exclusive");
    if key.is_empty() {
        if prefix && from_key {
            return Err(exclusive());
        }
        let end = if prefix || from_key {
            vec![0]
        } else {
            Vec::new()
        };
        return Ok((vec![0], end));
    }
    let end = match (range_end, prefix, from_key) {
        (None, true, true) => return Err(exclusive()),
        (None, true, false) => prefix_range_end(key.as_bytes()),
        (None, false, true) => vec![0],
        (None, false, false) => Vec::new(),
        (Some(_), true, _) => {
            return Err(CliError::bad_args(
                "unexpected endkey argument with --prefix flag",
            ));
        }
        (Some(_), false, true) => {
            return Err(CliError::bad_args(
                "unexpected endkey argument with --from-key flag",
            ));
        }
        (Some(end), false, false) => end.as_bytes().to_vec(),
    };
    Ok((key.as_bytes().to_vec(), end))
}

/// A new password for `name`: asked twice on the terminal without echo, or one word
/// read from stdin with `--interactive=false`, as etcdctl does.
fn new_password(name: &str, interactive: bool) -> Result<String, CliError> {
    if !interactive {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| CliError::bad_args(format!("failed to read password: {e}")))?;
        return Ok(line
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string());
    }
    let ask = |prompt: String| {
        rpassword::prompt_password(prompt)
            .map_err(|e| CliError::bad_args(format!("failed to ask password: {e}")))
    };
    let first = ask(format!("Password of {name}: "))?;
    if first.is_empty() {
        return Err(CliError::bad_args("empty password"));
    }
    let second = ask(format!("Type password of {name} again for confirmation: "))?;
    if first != second {
        return Err(CliError::bad_args("given passwords are different"));
    }
    Ok(first)
}

/// The credentials `--user` and `--password` name: `user:password` in `--user`, or
/// `--password`, or else a prompt on the terminal (etcdctl's `Password: `).
pub fn credentials(
    user: Option<&str>,
    password: Option<&str>,
) -> Result<Option<vane_client::Credentials>, CliError> {
    let Some(user) = user.filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    if let Some(password) = password.filter(|p| !p.is_empty()) {
        if user.contains(':') {
            return Err(CliError::bad_args(
                "--user and --password cannot both carry a password; give --user without :password",
            ));
        }
        return Ok(Some(vane_client::Credentials::new(user, password)));
    }
    if let Some((name, password)) = user.split_once(':') {
        return Ok(Some(vane_client::Credentials::new(name, password)));
    }
    let password = rpassword::prompt_password("Password: ")
        .map_err(|e| CliError::bad_args(format!("failed to ask password: {e}")))?;
    Ok(Some(vane_client::Credentials::new(user, password)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_ranges_follow_etcdctl() {
        assert_eq!(
            perm_range("k", None, false, false).unwrap(),
            (b"k".to_vec(), vec![])
        );
        assert_eq!(
            perm_range("/app/", None, true, false).unwrap(),
            (b"/app/".to_vec(), b"/app0".to_vec())
        );
        assert_eq!(
            perm_range("a", Some("z"), false, false).unwrap(),
            (b"a".to_vec(), b"z".to_vec())
        );
        assert_eq!(
            perm_range("y", None, false, true).unwrap(),
            (b"y".to_vec(), vec![0])
        );
        assert_eq!(
            perm_range("", None, true, false).unwrap(),
            (vec![0], vec![0])
        );
        let error = perm_range("a", Some("b"), true, false).unwrap_err();
        assert_eq!(
            error.message.as_deref(),
            Some("unexpected endkey argument with --prefix flag")
        );
        assert!(perm_range("a", None, true, true).is_err());
    }

    #[test]
    fn permission_types_parse_in_any_case() {
        assert_eq!(parse_perm_type("readwrite").unwrap(), PermType::Readwrite);
        assert_eq!(parse_perm_type("Read").unwrap(), PermType::Read);
        let error = parse_perm_type("bad").unwrap_err();
        assert_eq!(
            error.message.as_deref(),
            Some("invalid permission type: bad")
        );
    }

    #[test]
    fn credentials_come_from_user_or_password() {
        assert_eq!(credentials(None, Some("x")).unwrap(), None);
        let c = credentials(Some("root:pw:with:colons"), None)
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.user.as_str(), c.password.as_str()),
            ("root", "pw:with:colons")
        );
        let c = credentials(Some("root"), Some("pw")).unwrap().unwrap();
        assert_eq!((c.user.as_str(), c.password.as_str()), ("root", "pw"));
        assert!(credentials(Some("root:a"), Some("b")).is_err());
    }
}
