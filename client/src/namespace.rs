//! The configuration API through the client: namespaces (`vane.v1.Config`). Changes are
//! retried only when certainly not applied (creating a namespace twice fails against
//! its own success); reads and dry runs go to any member.

use vane_proto::api::change_request::State as ChangeState;
use vane_proto::api::config_client::ConfigClient;
use vane_proto::api::{
    ChangeActionRequest, ChangeOp, ChangeResponse, CreateChangeRequest, CreateNamespaceRequest,
    DeleteNamespaceRequest, DiffEnvironmentsRequest, DiffEnvironmentsResponse, GetChangeRequest,
    GetNamespaceRequest, ImpactRequest, ImpactResponse, ListAuditRequest, ListAuditResponse,
    ListChangesRequest, ListChangesResponse, ListNamespacesRequest, ListNamespacesResponse,
    Namespace, NamespaceResponse, ProposedWrite, ResolveRequest, ResolveResponse,
    UpdateNamespaceRequest, ValidateValueRequest, ValidateValueResponse, VerifyAuditRequest,
    VerifyAuditResponse,
};

use crate::client::{Attempts, Client, Headed};
use crate::error::Error;
use crate::members::{Conn, Route};
use crate::retry::Retry;

macro_rules! headless {
    ($($response:ty),* $(,)?) => {
        $(impl Headed for $response {
            fn header(&self) -> Option<&vane_proto::etcdserverpb::ResponseHeader> {
                None
            }
        })*
    };
}

headless!(
    NamespaceResponse,
    ListNamespacesResponse,
    ValidateValueResponse,
    ChangeResponse,
    ListChangesResponse,
    ListAuditResponse,
    VerifyAuditResponse,
    ResolveResponse,
    DiffEnvironmentsResponse,
    ImpactResponse,
);

/// A decision on a change request, for [`Client::decide_change`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeDecision {
    /// Approve it; the approval that meets the policy applies it.
    Approve,
    /// Reject it (approvers).
    Reject,
    /// Withdraw it (its author).
    Cancel,
    /// Take the keys' current revisions as its base, dropping approvals (its author).
    Rebase,
    /// Apply it without approvals (the namespace's break-glass role, with a reason).
    BreakGlass,
}

impl Client {
    /// Creates a namespace: it claims `namespace.prefix` and every write under it must
    /// then meet its schema and approval policy, on every API.
    pub async fn create_namespace(&self, namespace: Namespace) -> Result<NamespaceResponse, Error> {
        let request = CreateNamespaceRequest {
            namespace: Some(namespace),
        };
        self.config_call(
            "namespace create",
            Route::Write,
            Retry::OnlyUnapplied,
            |mut c| {
                let request = request.clone();
                async move { c.create_namespace(request).await.map(|r| r.into_inner()) }
            },
        )
        .await
    }

    /// Replaces a namespace's policy; with `force`, a schema that existing values do not
    /// satisfy is accepted and those values reported.
    pub async fn update_namespace(
        &self,
        namespace: Namespace,
        force: bool,
    ) -> Result<NamespaceResponse, Error> {
        let request = UpdateNamespaceRequest {
            namespace: Some(namespace),
            force,
        };
        self.config_call(
            "namespace update",
            Route::Write,
            Retry::OnlyUnapplied,
            |mut c| {
                let request = request.clone();
                async move { c.update_namespace(request).await.map(|r| r.into_inner()) }
            },
        )
        .await
    }

    /// Deletes a namespace that no longer has keys.
    pub async fn delete_namespace(&self, name: &str) -> Result<NamespaceResponse, Error> {
        let request = DeleteNamespaceRequest {
            name: name.to_string(),
        };
        self.config_call(
            "namespace delete",
            Route::Write,
            Retry::OnlyUnapplied,
            |mut c| {
                let request = request.clone();
                async move { c.delete_namespace(request).await.map(|r| r.into_inner()) }
            },
        )
        .await
    }

    /// One namespace by name.
    pub async fn get_namespace(&self, name: &str) -> Result<NamespaceResponse, Error> {
        let request = GetNamespaceRequest {
            name: name.to_string(),
        };
        self.config_call("namespace get", Route::Read, Retry::Always, |mut c| {
            let request = request.clone();
            async move { c.get_namespace(request).await.map(|r| r.into_inner()) }
        })
        .await
    }

    /// Every namespace, by name.
    pub async fn list_namespaces(&self) -> Result<ListNamespacesResponse, Error> {
        self.config_call(
            "namespace list",
            Route::Read,
            Retry::Always,
            |mut c| async move {
                c.list_namespaces(ListNamespacesRequest {})
                    .await
                    .map(|r| r.into_inner())
            },
        )
        .await
    }

    /// Whether writing `value` at `key` would be accepted now, and why not: a dry run.
    pub async fn validate_value(
        &self,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
    ) -> Result<ValidateValueResponse, Error> {
        let request = ValidateValueRequest {
            key: key.into(),
            value: value.into(),
        };
        self.config_call("validate", Route::Read, Retry::Always, |mut c| {
            let request = request.clone();
            async move { c.validate_value(request).await.map(|r| r.into_inner()) }
        })
        .await
    }

    /// Opens a change request of `ops` in `namespace`; each key's current revision
    /// becomes its base. In a namespace that needs no approvals it applies at once.
    pub async fn create_change(
        &self,
        namespace: &str,
        description: &str,
        ops: Vec<ChangeOp>,
    ) -> Result<ChangeResponse, Error> {
        self.create_change_at(namespace, description, ops, 0).await
    }

    /// [`Client::create_change`] that, once approved, applies at `apply_at_ms` (ms since
    /// the Unix epoch, compared with the cluster's log time); the leader applies it then.
    pub async fn create_change_at(
        &self,
        namespace: &str,
        description: &str,
        ops: Vec<ChangeOp>,
        apply_at_ms: i64,
    ) -> Result<ChangeResponse, Error> {
        let request = CreateChangeRequest {
            namespace: namespace.to_string(),
            description: description.to_string(),
            ops,
            rollback: false,
            apply_at_ms,
        };
        self.config_call(
            "change create",
            Route::Write,
            Retry::OnlyUnapplied,
            |mut c| {
                let request = request.clone();
                async move { c.create_change(request).await.map(|r| r.into_inner()) }
            },
        )
        .await
    }

    /// Approves, rejects, cancels, rebases or breaks glass on change request `id`, as the
    /// client's user. `reason` is kept with rejections and break-glass.
    pub async fn decide_change(
        &self,
        id: u64,
        decision: ChangeDecision,
        reason: &str,
    ) -> Result<ChangeResponse, Error> {
        let request = ChangeActionRequest {
            id,
            reason: reason.to_string(),
        };
        self.config_call(
            "change decision",
            Route::Write,
            Retry::OnlyUnapplied,
            |mut c| {
                let request = request.clone();
                async move {
                    match decision {
                        ChangeDecision::Approve => c.approve_change(request).await,
                        ChangeDecision::Reject => c.reject_change(request).await,
                        ChangeDecision::Cancel => c.cancel_change(request).await,
                        ChangeDecision::Rebase => c.rebase_change(request).await,
                        ChangeDecision::BreakGlass => c.break_glass_change(request).await,
                    }
                    .map(|r| r.into_inner())
                }
            },
        )
        .await
    }

    /// Change request `id`.
    pub async fn get_change(&self, id: u64) -> Result<ChangeResponse, Error> {
        self.config_call(
            "change get",
            Route::Read,
            Retry::Always,
            |mut c| async move {
                c.get_change(GetChangeRequest { id })
                    .await
                    .map(|r| r.into_inner())
            },
        )
        .await
    }

    /// Change requests, newest first, of `namespace` (all when empty), in `state` if given.
    pub async fn list_changes(
        &self,
        namespace: &str,
        state: Option<ChangeState>,
    ) -> Result<ListChangesResponse, Error> {
        let request = ListChangesRequest {
            namespace: namespace.to_string(),
            filter_state: state.is_some(),
            state: state.map_or(0, |s| s as i32),
        };
        self.config_call("change list", Route::Read, Retry::Always, |mut c| {
            let request = request.clone();
            async move { c.list_changes(request).await.map(|r| r.into_inner()) }
        })
        .await
    }

    /// Audit records matching `filter`, oldest first: who changed what under the
    /// namespaces, through which door, before and after.
    pub async fn list_audit(&self, filter: ListAuditRequest) -> Result<ListAuditResponse, Error> {
        self.config_call("audit list", Route::Read, Retry::Always, |mut c| {
            let filter = filter.clone();
            async move { c.list_audit(filter).await.map(|r| r.into_inner()) }
        })
        .await
    }

    /// Writes `key`'s value at `revision` back, as a new change: a change request marked
    /// as a rollback, which applies at once in a namespace that needs no approvals and
    /// waits for them in one that does. The old value comes from the audit (which
    /// outlives compaction), else from the key's history at that revision.
    pub async fn rollback(
        &self,
        key: &[u8],
        revision: i64,
        description: &str,
    ) -> Result<ChangeResponse, Error> {
        let verdict = self.validate_value(key.to_vec(), Vec::new()).await?;
        if verdict.namespace.is_empty() {
            return Err(Error::invalid(format!(
                "{} is in no namespace; write the old value back with put",
                String::from_utf8_lossy(key)
            )));
        }
        let history = self
            .list_audit(ListAuditRequest {
                key: key.to_vec(),
                ..Default::default()
            })
            .await?;
        let recorded = history
            .records
            .iter()
            .rev()
            .find(|r| r.revision <= revision)
            .map(|r| (!r.deleted).then(|| r.after.clone()));
        let old_value = match recorded {
            Some(value) => value,
            None => {
                let at = self
                    .range(vane_proto::etcdserverpb::RangeRequest {
                        key: key.to_vec(),
                        revision,
                        ..Default::default()
                    })
                    .await?;
                at.kvs.into_iter().next().map(|kv| kv.value)
            }
        };
        let op = match old_value {
            Some(value) => ChangeOp {
                key: key.to_vec(),
                value,
                ..Default::default()
            },
            None => ChangeOp {
                key: key.to_vec(),
                delete: true,
                ..Default::default()
            },
        };
        let request = CreateChangeRequest {
            namespace: verdict.namespace,
            description: description.to_string(),
            ops: vec![op],
            rollback: true,
            apply_at_ms: 0,
        };
        self.config_call("rollback", Route::Write, Retry::OnlyUnapplied, |mut c| {
            let request = request.clone();
            async move { c.create_change(request).await.map(|r| r.into_inner()) }
        })
        .await
    }

    /// `key` (relative to the environment) of `namespace` as `environment` sees it: the
    /// most specific layer that has it, else the schema's default; the answer names the
    /// layer.
    pub async fn resolve(
        &self,
        namespace: &str,
        environment: &str,
        key: &[u8],
    ) -> Result<ResolveResponse, Error> {
        let request = ResolveRequest {
            namespace: namespace.to_string(),
            environment: environment.to_string(),
            key: key.to_vec(),
        };
        self.config_call("resolve", Route::Read, Retry::Always, |mut c| {
            let request = request.clone();
            async move { c.resolve(request).await.map(|r| r.into_inner()) }
        })
        .await
    }

    /// The keys whose resolved values differ between environments `from` and `to`.
    pub async fn diff_environments(
        &self,
        namespace: &str,
        from: &str,
        to: &str,
    ) -> Result<DiffEnvironmentsResponse, Error> {
        let request = DiffEnvironmentsRequest {
            namespace: namespace.to_string(),
            from: from.to_string(),
            to: to.to_string(),
        };
        self.config_call("diff-env", Route::Read, Retry::Always, |mut c| {
            let request = request.clone();
            async move { c.diff_environments(request).await.map(|r| r.into_inner()) }
        })
        .await
    }

    /// What applying change request `id` now would do: each key it touches, whether it
    /// would be accepted (schema, base revision) and why not, and the live watchers on
    /// every member that would receive it (at most `watcher_limit`, 0 for the server's
    /// default of 1,000). Changes nothing.
    pub async fn change_impact(
        &self,
        id: u64,
        watcher_limit: u32,
    ) -> Result<ImpactResponse, Error> {
        self.impact(ImpactRequest {
            change_id: id,
            writes: Vec::new(),
            watcher_limit,
        })
        .await
    }

    /// [`Client::change_impact`] for direct writes (puts, deletes of a key or a range),
    /// checked as the etcd API's writes are: schema, and approval policy.
    pub async fn writes_impact(
        &self,
        writes: Vec<ProposedWrite>,
        watcher_limit: u32,
    ) -> Result<ImpactResponse, Error> {
        self.impact(ImpactRequest {
            change_id: 0,
            writes,
            watcher_limit,
        })
        .await
    }

    async fn impact(&self, request: ImpactRequest) -> Result<ImpactResponse, Error> {
        self.config_call("impact", Route::Read, Retry::Always, |mut c| {
            let request = request.clone();
            async move { c.impact(request).await.map(|r| r.into_inner()) }
        })
        .await
    }

    /// Recomputes the audit's hash chain on a member; names the first broken record.
    pub async fn verify_audit(&self) -> Result<VerifyAuditResponse, Error> {
        self.config_call(
            "audit verify",
            Route::Read,
            Retry::Always,
            |mut c| async move {
                c.verify_audit(VerifyAuditRequest {})
                    .await
                    .map(|r| r.into_inner())
            },
        )
        .await
    }

    async fn config_call<T, F, Fut>(
        &self,
        what: &'static str,
        route: Route,
        retry: Retry,
        mut attempt: F,
    ) -> Result<T, Error>
    where
        T: Headed,
        F: FnMut(ConfigClient<Conn>) -> Fut,
        Fut: std::future::Future<Output = Result<T, tonic::Status>>,
    {
        self.inner
            .call(
                what,
                route,
                retry,
                self.inner.deadline(),
                &mut Attempts::default(),
                |channel| attempt(ConfigClient::new(channel)),
            )
            .await
    }
}
