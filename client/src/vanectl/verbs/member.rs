//! `member add|remove|update|promote|list`: the Cluster service.

use vane_proto::etcdserverpb::Member;

use super::super::cli::MemberCommand;
use super::super::exit::{self, CliError};
use super::super::output::{OutputFormat, Report, ReportKind};
use super::Context;

/// `member ...`.
pub async fn member(context: &Context, command: MemberCommand) -> Result<(), CliError> {
    match command {
        MemberCommand::Add {
            name,
            peer_urls,
            learner,
        } => {
            context.printer.check_supported(ReportKind::MemberAdd)?;
            let client = context.connect().await?;
            let mut response = client
                .member_add(peer_urls, learner)
                .await
                .map_err(exit::from_client)?;
            sort_by_id(&mut response.members);
            let new_id = response.member.as_ref().map_or(0, |m| m.id);
            // The simple format also prints the new member's --initial-cluster; read the
            // list again, as a failover may have answered the add from an older one.
            let initial_cluster = if context.printer.format == OutputFormat::Simple {
                let mut list = client.member_list().await.map_err(exit::from_client)?;
                sort_by_id(&mut list.members);
                let pairs: Vec<String> = list
                    .members
                    .iter()
                    .flat_map(|m| {
                        let member_name = if m.id == new_id {
                            name.clone()
                        } else {
                            m.name.clone()
                        };
                        m.peer_ur_ls
                            .iter()
                            .map(move |url| format!("{member_name}={url}"))
                    })
                    .collect();
                Some(pairs.join(","))
            } else {
                None
            };
            context.emit(&Report::MemberAdd {
                response: &response,
                name: &name,
                initial_cluster: initial_cluster.as_deref(),
            })
        }
        MemberCommand::Remove { id } => {
            context.printer.check_supported(ReportKind::MemberRemove)?;
            let client = context.connect().await?;
            let mut response = client.member_remove(id).await.map_err(exit::from_client)?;
            sort_by_id(&mut response.members);
            context.emit(&Report::MemberRemove {
                id,
                response: &response,
            })
        }
        MemberCommand::Update { id, peer_urls } => {
            context.printer.check_supported(ReportKind::MemberUpdate)?;
            let client = context.connect().await?;
            let mut response = client
                .member_update(id, peer_urls)
                .await
                .map_err(exit::from_client)?;
            sort_by_id(&mut response.members);
            context.emit(&Report::MemberUpdate {
                id,
                response: &response,
            })
        }
        MemberCommand::Promote { id } => {
            context.printer.check_supported(ReportKind::MemberPromote)?;
            let client = context.connect().await?;
            let mut response = client.member_promote(id).await.map_err(exit::from_client)?;
            sort_by_id(&mut response.members);
            context.emit(&Report::MemberPromote {
                id,
                response: &response,
            })
        }
        MemberCommand::List => {
            context.printer.check_supported(ReportKind::MemberList)?;
            let client = context.connect().await?;
            let mut response = client.member_list().await.map_err(exit::from_client)?;
            sort_by_id(&mut response.members);
            context.emit(&Report::MemberList(&response))
        }
    }
}

/// etcd lists members sorted by ID; sorting here keeps vanectl's output stable and
/// etcd's even where a server answers in another order.
fn sort_by_id(members: &mut [Member]) {
    members.sort_by_key(|m| m.id);
}
