//! The Cluster service through the client: listing members from any member, and
//! membership changes, which are retried only when the failed attempt was certainly not
//! applied (adding a member twice would fail or add two). Every answer carries the
//! membership, which the client adopts so it can reach members added since it connected.

use vane_proto::etcdserverpb::cluster_client::ClusterClient;
use vane_proto::etcdserverpb::{
    Member, MemberAddRequest, MemberAddResponse, MemberListRequest, MemberListResponse,
    MemberPromoteRequest, MemberPromoteResponse, MemberRemoveRequest, MemberRemoveResponse,
    MemberUpdateRequest, MemberUpdateResponse,
};

use crate::client::{Attempts, Client};
use crate::error::Error;
use crate::members::Route;
use crate::retry::Retry;

impl Client {
    /// etcd's MemberList, from any member's view of the membership.
    pub async fn member_list(&self) -> Result<MemberListResponse, Error> {
        let response = self
            .inner
            .call(
                "member list",
                Route::Read,
                Retry::Always,
                self.inner.deadline(),
                &mut Attempts::default(),
                |channel| async move {
                    ClusterClient::new(channel)
                        .member_list(MemberListRequest {
                            linearizable: false,
                        })
                        .await
                        .map(|r| r.into_inner())
                },
            )
            .await?;
        self.adopt_members(&response.members);
        Ok(response)
    }

    /// etcd's MemberAdd: registers a member (a learner when `learner`) by its peer URLs;
    /// start its `vaned` with `--initial-cluster-state existing` afterwards.
    pub async fn member_add(
        &self,
        peer_urls: Vec<String>,
        learner: bool,
    ) -> Result<MemberAddResponse, Error> {
        let response = self
            .membership_change("member add", |channel| {
                let request = MemberAddRequest {
                    peer_ur_ls: peer_urls.clone(),
                    is_learner: learner,
                };
                async move {
                    ClusterClient::new(channel)
                        .member_add(request)
                        .await
                        .map(|r| r.into_inner())
                }
            })
            .await?;
        self.adopt_members(&response.members);
        Ok(response)
    }

    /// etcd's MemberRemove.
    pub async fn member_remove(&self, id: u64) -> Result<MemberRemoveResponse, Error> {
        let response = self
            .membership_change("member remove", |channel| async move {
                ClusterClient::new(channel)
                    .member_remove(MemberRemoveRequest { id })
                    .await
                    .map(|r| r.into_inner())
            })
            .await?;
        self.adopt_members(&response.members);
        Ok(response)
    }

    /// etcd's MemberUpdate: replaces a member's peer URLs.
    pub async fn member_update(
        &self,
        id: u64,
        peer_urls: Vec<String>,
    ) -> Result<MemberUpdateResponse, Error> {
        let response = self
            .membership_change("member update", |channel| {
                let request = MemberUpdateRequest {
                    id,
                    peer_ur_ls: peer_urls.clone(),
                };
                async move {
                    ClusterClient::new(channel)
                        .member_update(request)
                        .await
                        .map(|r| r.into_inner())
                }
            })
            .await?;
        self.adopt_members(&response.members);
        Ok(response)
    }

    /// etcd's MemberPromote: makes a caught-up learner a voter.
    pub async fn member_promote(&self, id: u64) -> Result<MemberPromoteResponse, Error> {
        let response = self
            .membership_change("member promote", |channel| async move {
                ClusterClient::new(channel)
                    .member_promote(MemberPromoteRequest { id })
                    .await
                    .map(|r| r.into_inner())
            })
            .await?;
        self.adopt_members(&response.members);
        Ok(response)
    }

    async fn membership_change<T, F, Fut>(&self, what: &'static str, attempt: F) -> Result<T, Error>
    where
        T: crate::client::Headed,
        F: FnMut(crate::members::Conn) -> Fut,
        Fut: std::future::Future<Output = Result<T, tonic::Status>>,
    {
        self.inner
            .call(
                what,
                Route::Write,
                Retry::OnlyUnapplied,
                self.inner.deadline(),
                &mut Attempts::default(),
                attempt,
            )
            .await
    }

    fn adopt_members(&self, members: &[Member]) {
        if !self.inner.config.discover_members {
            return;
        }
        if let Err(e) = self.inner.pool.merge_members(members) {
            tracing::debug!(error = %e, "cannot adopt the reported membership");
        }
    }
}
