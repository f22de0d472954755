//! `vane.v1.Config` on the client port: namespaces, the governance objects that make a
//! key prefix a configuration. Changes are Raft commands checked again at apply (see
//! `vane_raft_store::governance`); reads are linearizable, answered after a barrier,
//! like etcd's default Range.
//!
//! While auth is on, changing a namespace needs the root role; reading one needs only a
//! verified caller, since a policy is what every writer must know to write correctly.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use vane_proto::api::config_server::Config;
use vane_proto::api::{
    CreateNamespaceRequest, DeleteNamespaceRequest, GetNamespaceRequest, ListNamespacesRequest,
    ListNamespacesResponse, NamespaceResponse, UpdateNamespaceRequest, ValidateValueRequest,
    ValidateValueResponse,
};
use vane_proto::raft::command::Op;
use vane_proto::raft::command_result::Result as Outcome;
use vane_proto::raft::{NamespaceChange, NamespaceDelete};
use vane_raft_store::auth::Access;
use vane_raft_store::{GovernanceError, StoreError};

use crate::errors;
use crate::node::Node;

/// Serves `vane.v1.Config` for one member.
pub struct ConfigService {
    node: Arc<Node>,
}

impl ConfigService {
    /// Serves `node`.
    pub fn new(node: Arc<Node>) -> Self {
        ConfigService { node }
    }

    /// Proposes a namespace change for a caller with the root role (or any while auth is
    /// off) and answers with what was stored.
    async fn change<T>(&self, request: &Request<T>, op: Op) -> Result<NamespaceResponse, Status> {
        let caller = self
            .node
            .authorized_caller(request.metadata(), &[Access::Admin])
            .await?;
        let result = self.node.propose_as(op, None, &caller).await?;
        match result.result {
            Some(Outcome::Namespace(response)) => Ok(*response),
            Some(Outcome::Error(e)) => Err(errors::from_command(&e)),
            other => Err(Status::internal(format!(
                "vane: unexpected result of a namespace change: {other:?}"
            ))),
        }
    }

    /// A verified caller, with this member caught up to every change acknowledged before
    /// the request.
    async fn read<T>(&self, request: &Request<T>) -> Result<(), Status> {
        self.node.caller(request.metadata()).await?;
        self.node.linearizable_barrier().await
    }
}

impl Node {
    /// Refuses a put of `value` at `key` that the key's namespace would refuse at apply,
    /// before it costs a proposal. A refusal by this member's applied state is confirmed
    /// after a barrier, so a member behind a schema change never refuses what it allows.
    pub async fn refuse_ungoverned(
        &self,
        key: &[u8],
        value: &[u8],
        lease: i64,
    ) -> Result<(), Status> {
        let check = || {
            self.state_machine
                .check_governed_write(key, Some(value), lease)
                .map_err(errors::from_store)
        };
        if check()?.is_none() {
            return Ok(());
        }
        self.linearizable_barrier().await?;
        match check()? {
            Some((_, refusal)) => Err(errors::from_store(refusal)),
            None => Ok(()),
        }
    }
}

#[tonic::async_trait]
impl Config for ConfigService {
    async fn create_namespace(
        &self,
        request: Request<CreateNamespaceRequest>,
    ) -> Result<Response<NamespaceResponse>, Status> {
        let op = Op::NamespaceChange(Box::new(NamespaceChange {
            namespace: request.get_ref().namespace.clone(),
            create: true,
            force: false,
        }));
        Ok(Response::new(self.change(&request, op).await?))
    }

    async fn update_namespace(
        &self,
        request: Request<UpdateNamespaceRequest>,
    ) -> Result<Response<NamespaceResponse>, Status> {
        let op = Op::NamespaceChange(Box::new(NamespaceChange {
            namespace: request.get_ref().namespace.clone(),
            create: false,
            force: request.get_ref().force,
        }));
        Ok(Response::new(self.change(&request, op).await?))
    }

    async fn delete_namespace(
        &self,
        request: Request<DeleteNamespaceRequest>,
    ) -> Result<Response<NamespaceResponse>, Status> {
        let op = Op::NamespaceDelete(NamespaceDelete {
            name: request.get_ref().name.clone(),
        });
        Ok(Response::new(self.change(&request, op).await?))
    }

    async fn get_namespace(
        &self,
        request: Request<GetNamespaceRequest>,
    ) -> Result<Response<NamespaceResponse>, Status> {
        self.read(&request).await?;
        let name = &request.get_ref().name;
        let namespace = self
            .node
            .state_machine
            .namespace(name)
            .map_err(errors::from_store)?
            .ok_or_else(|| {
                errors::from_store(StoreError::Governance(GovernanceError::NotFound(
                    name.clone(),
                )))
            })?;
        Ok(Response::new(NamespaceResponse {
            namespace: Some(namespace),
            revision: self.node.state_machine.applied().revision,
            offending_keys: Vec::new(),
            offending_count: 0,
        }))
    }

    async fn list_namespaces(
        &self,
        request: Request<ListNamespacesRequest>,
    ) -> Result<Response<ListNamespacesResponse>, Status> {
        self.read(&request).await?;
        let (namespaces, revision) = self
            .node
            .state_machine
            .namespaces()
            .map_err(errors::from_store)?;
        Ok(Response::new(ListNamespacesResponse {
            namespaces,
            revision,
        }))
    }

    async fn validate_value(
        &self,
        request: Request<ValidateValueRequest>,
    ) -> Result<Response<ValidateValueResponse>, Status> {
        self.read(&request).await?;
        let ValidateValueRequest { key, value } = request.into_inner();
        let state = &self.node.state_machine;
        let namespace = state
            .governing_namespace(&key)
            .map_err(errors::from_store)?
            .map(|n| n.name)
            .unwrap_or_default();
        let refusal = state
            .check_governed_write(&key, Some(&value), 0)
            .map_err(errors::from_store)?;
        Ok(Response::new(ValidateValueResponse {
            valid: refusal.is_none(),
            namespace,
            reason: refusal.map(|(_, e)| e.to_string()).unwrap_or_default(),
        }))
    }
}
