//! `endpoint status|health`: one report per endpoint, each through a client of its own
//! that talks to that endpoint only, so one dead member shows as one failed line
//! instead of being hidden by failover.

use std::time::Instant;

use vane_client::Client;
use vane_proto::etcdserverpb::alarm_request::AlarmAction;
use vane_proto::etcdserverpb::{AlarmRequest, AlarmType, RangeRequest};

use super::super::cli::EndpointCommand;
use super::super::connect;
use super::super::exit::{self, CliError, Exit};
use super::super::output::{EndpointHealth, EndpointStatus, OutputFormat, Report, ReportKind};
use super::Context;

/// `endpoint ...`.
pub async fn endpoint(context: &Context, command: EndpointCommand) -> Result<(), CliError> {
    match command {
        EndpointCommand::Status { cluster } => status(context, cluster).await,
        EndpointCommand::Health { cluster } => health(context, cluster).await,
    }
}

/// `--endpoints`, or with `--cluster` every member's client URLs.
async fn endpoints(context: &Context, cluster: bool) -> Result<Vec<String>, CliError> {
    if !cluster {
        return Ok(context.global.endpoints.clone());
    }
    let client = context.connect().await?;
    let members = client.member_list().await.map_err(exit::from_client)?;
    Ok(members
        .members
        .iter()
        .flat_map(|m| m.client_ur_ls.iter().cloned())
        .collect())
}

/// A client bound to `endpoint` alone.
async fn single_endpoint_client(context: &Context, endpoint: &str) -> Result<Client, String> {
    let mut config = connect::client_config(&context.global, vec![endpoint.to_string()]);
    config.discover_members = false;
    config.sessions = false;
    Client::connect(config)
        .await
        .map_err(|e| e.message().to_string())
}

async fn status(context: &Context, cluster: bool) -> Result<(), CliError> {
    context
        .printer
        .check_supported(ReportKind::EndpointStatus)?;
    let endpoints = endpoints(context, cluster).await?;
    let answers = futures::future::join_all(endpoints.iter().map(|endpoint| async move {
        let client = single_endpoint_client(context, endpoint).await?;
        client
            .status(endpoint)
            .await
            .map_err(|e| e.message().to_string())
    }))
    .await;
    let mut statuses = Vec::new();
    let mut failed = false;
    for (endpoint, answer) in endpoints.iter().zip(answers) {
        match answer {
            Ok(status) => statuses.push(EndpointStatus {
                endpoint: endpoint.clone(),
                status,
            }),
            Err(error) => {
                failed = true;
                eprintln!("Failed to get the status of endpoint {endpoint} ({error})");
            }
        }
    }
    context.emit(&Report::EndpointStatus(&statuses))?;
    if failed {
        return Err(CliError::quiet(Exit::Error));
    }
    Ok(())
}

async fn health(context: &Context, cluster: bool) -> Result<(), CliError> {
    context
        .printer
        .check_supported(ReportKind::EndpointHealth)?;
    let endpoints = endpoints(context, cluster).await?;
    let healths = futures::future::join_all(
        endpoints
            .iter()
            .map(|endpoint| check_health(context, endpoint)),
    )
    .await;
    let report = Report::EndpointHealth(&healths);
    if context.printer.format == OutputFormat::Simple {
        // etcdctl 3.4 prints the simple health lines on stderr.
        let text = context.printer.render(&report)?;
        eprint!("{}", String::from_utf8_lossy(&text));
    } else {
        context.emit(&report)?;
    }
    if healths.iter().any(|h| !h.healthy) {
        return Err(CliError::failed("unhealthy cluster"));
    }
    Ok(())
}

/// etcdctl's health check: a linearizable read through the endpoint (a permission
/// error still proves the cluster committed), then no alarm raised.
async fn check_health(context: &Context, endpoint: &str) -> EndpointHealth {
    let started = Instant::now();
    let verdict = async {
        let client = single_endpoint_client(context, endpoint).await?;
        let read = client
            .range(RangeRequest {
                key: b"health".to_vec(),
                ..Default::default()
            })
            .await;
        match read {
            Ok(_) | Err(vane_client::Error::Permission { .. }) => {}
            Err(error) => return Err(error.message().to_string()),
        }
        let alarms = client
            .alarm(AlarmRequest {
                action: AlarmAction::Get as i32,
                member_id: 0,
                alarm: AlarmType::None as i32,
            })
            .await
            .map_err(|_| "Unable to fetch the alarm list".to_string())?;
        if alarms.alarms.is_empty() {
            Ok(())
        } else {
            let names: Vec<&str> = alarms
                .alarms
                .iter()
                .map(|a| AlarmType::try_from(a.alarm).map_or("UNKNOWN", |t| t.as_str_name()))
                .collect();
            Err(format!("Active Alarm(s): {}", names.join(" ")))
        }
    }
    .await;
    EndpointHealth {
        endpoint: endpoint.to_string(),
        healthy: verdict.is_ok(),
        took: started.elapsed(),
        error: verdict.err().unwrap_or_default(),
    }
}
