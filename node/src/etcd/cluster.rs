//! etcd's Cluster service: the members as Raft's membership knows them, and changes to
//! them (made by the leader, see `membership`). With auth on, changes need the root
//! role; listing does not, as in etcd.

use openraft::async_runtime::WatchReceiver;
use std::sync::Arc;

use tonic::{Request, Response, Status};
use vane_proto::etcdserverpb::cluster_server::Cluster;
use vane_proto::etcdserverpb::{
    Member, MemberAddRequest, MemberAddResponse, MemberListRequest, MemberListResponse,
    MemberPromoteRequest, MemberPromoteResponse, MemberRemoveRequest, MemberRemoveResponse,
    MemberUpdateRequest, MemberUpdateResponse,
};

use vane_proto::raft::membership_change::Change;
use vane_proto::raft::{AddMember, MembershipChange, UpdateMember};
use vane_raft_store::raft::convert::membership_to_pb;

use crate::auth::Access;
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

    fn current_members(&self) -> Vec<Member> {
        let membership = {
            let metrics = self.node.raft.metrics();
            let m = metrics.borrow_watched();
            membership_to_pb(m.membership_config.membership())
        };
        members_of(&membership)
    }

    fn header(&self) -> Option<vane_proto::etcdserverpb::ResponseHeader> {
        self.node.header(self.node.state_machine.applied().revision)
    }

    async fn change(&self, change: Change) -> Result<(u64, Vec<Member>), Status> {
        let reply = self
            .node
            .change_members(MembershipChange {
                change: Some(change),
            })
            .await?;
        let members = reply
            .membership
            .as_ref()
            .map(members_of)
            .unwrap_or_default();
        Ok((reply.added_id, members))
    }
}

/// etcd's member records from a membership: a member outside every voter set is a learner.
fn members_of(membership: &vane_proto::raft::Membership) -> Vec<Member> {
    let voters: Vec<u64> = membership
        .configs
        .iter()
        .flat_map(|c| c.ids.iter().copied())
        .collect();
    let mut members: Vec<Member> = membership
        .nodes
        .iter()
        .map(|(id, node)| Member {
            id: *id,
            name: node.name.clone(),
            peer_ur_ls: node.peer_urls.clone(),
            client_ur_ls: node.client_urls.clone(),
            is_learner: !voters.contains(id),
        })
        .collect();
    // The stored map has no order; etcd lists members by id, and scripts diff the output.
    members.sort_by_key(|m| m.id);
    members
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_add(
        &self,
        request: Request<MemberAddRequest>,
    ) -> Result<Response<MemberAddResponse>, Status> {
        self.node
            .authorized_caller(request.metadata(), &[Access::Admin])
            .await?;
        let request = request.into_inner();
        let (id, members) = self
            .change(Change::Add(AddMember {
                peer_urls: request.peer_ur_ls,
                is_learner: request.is_learner,
            }))
            .await?;
        let member = members.iter().find(|m| m.id == id).cloned();
        Ok(Response::new(MemberAddResponse {
            header: self.header(),
            member,
            members,
        }))
    }

    async fn member_remove(
        &self,
        request: Request<MemberRemoveRequest>,
    ) -> Result<Response<MemberRemoveResponse>, Status> {
        self.node
            .authorized_caller(request.metadata(), &[Access::Admin])
            .await?;
        let (_, members) = self.change(Change::Remove(request.into_inner().id)).await?;
        Ok(Response::new(MemberRemoveResponse {
            header: self.header(),
            members,
        }))
    }

    async fn member_update(
        &self,
        request: Request<MemberUpdateRequest>,
    ) -> Result<Response<MemberUpdateResponse>, Status> {
        self.node
            .authorized_caller(request.metadata(), &[Access::Admin])
            .await?;
        let request = request.into_inner();
        let (_, members) = self
            .change(Change::Update(UpdateMember {
                id: request.id,
                peer_urls: request.peer_ur_ls,
            }))
            .await?;
        Ok(Response::new(MemberUpdateResponse {
            header: self.header(),
            members,
        }))
    }

    async fn member_list(
        &self,
        _request: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        Ok(Response::new(MemberListResponse {
            header: self.header(),
            members: self.current_members(),
        }))
    }

    async fn member_promote(
        &self,
        request: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        self.node
            .authorized_caller(request.metadata(), &[Access::Admin])
            .await?;
        let (_, members) = self
            .change(Change::Promote(request.into_inner().id))
            .await?;
        Ok(Response::new(MemberPromoteResponse {
            header: self.header(),
            members,
        }))
    }
}
