//! etcd's Cluster service: the members as Raft's membership knows them.

use openraft::async_runtime::WatchReceiver;
use std::sync::Arc;

use tonic::{Request, Response, Status};
use vane_proto::etcdserverpb::cluster_server::Cluster;
use vane_proto::etcdserverpb::{
    Member, MemberAddRequest, MemberAddResponse, MemberListRequest, MemberListResponse,
    MemberPromoteRequest, MemberPromoteResponse, MemberRemoveRequest, MemberRemoveResponse,
    MemberUpdateRequest, MemberUpdateResponse,
};

use crate::node::Node;

/// Serves the Cluster API of one member.
pub struct ClusterService {
    node: Arc<Node>,
}

impl ClusterService {
    /// Serves `node`.
    pub fn new(node: Arc<Node>) -> Self {
        ClusterService { node }
    }

    fn members(&self) -> Vec<Member> {
        let metrics = self.node.raft.metrics();
        let metrics = metrics.borrow_watched();
        let membership = metrics.membership_config.membership();
        let voters: Vec<u64> = membership.voter_ids().collect();
        membership
            .nodes()
            .map(|(id, node)| Member {
                id: *id,
                name: node.name.clone(),
                peer_ur_ls: node.peer_urls.clone(),
                client_ur_ls: node.client_urls.clone(),
                is_learner: !voters.contains(id),
            })
            .collect()
    }
}

fn not_yet(what: &str) -> Status {
    Status::unimplemented(format!(
        "vane: {what} is not available yet in this build; membership changes arrive with the cluster issue"
    ))
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_add(
        &self,
        _request: Request<MemberAddRequest>,
    ) -> Result<Response<MemberAddResponse>, Status> {
        Err(not_yet("MemberAdd"))
    }

    async fn member_remove(
        &self,
        _request: Request<MemberRemoveRequest>,
    ) -> Result<Response<MemberRemoveResponse>, Status> {
        Err(not_yet("MemberRemove"))
    }

    async fn member_update(
        &self,
        _request: Request<MemberUpdateRequest>,
    ) -> Result<Response<MemberUpdateResponse>, Status> {
        Err(not_yet("MemberUpdate"))
    }

    async fn member_list(
        &self,
        _request: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        let revision = self.node.state_machine.applied().revision;
        Ok(Response::new(MemberListResponse {
            header: self.node.header(revision),
            members: self.members(),
        }))
    }

    async fn member_promote(
        &self,
        _request: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        Err(not_yet("MemberPromote"))
    }
}
