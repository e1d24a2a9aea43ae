//! Reaching JetStream: connecting (for ever, saying so while the server is away), finding or
//! creating the stream, and the one-line descriptions of what went wrong.

use crate::options::{NatsArgs, Retention};
use anyhow::Context as _;
use async_nats::jetstream::context::{CreateStreamErrorKind, GetStreamErrorKind};
use async_nats::jetstream::{self, stream, Context};
use async_nats::{ConnectOptions, Event};
use ringfile_cli::signals::Signals;
use std::time::Duration;

/// How long a JetStream request or publish acknowledgement is waited for before the bridge
/// treats the server as away (and, for `out`, republishes what was not acknowledged).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a bridge that waits for the server, or the stream, looks again.
pub const RETRY: Duration = Duration::from_millis(500);

/// The servers, as the messages name them.
pub fn servers(args: &NatsArgs) -> String {
    args.server.join(",")
}

/// Connects to the servers. The client connects in the background and reconnects for ever:
/// a server that is down now or goes away later is waited for, and `program` says so once
/// each time it goes and comes back.
pub async fn connect(args: &NatsArgs, program: &'static str) -> anyhow::Result<Context> {
    let servers = servers(args);
    let said = servers.clone();
    let mut options = ConnectOptions::new()
        .name(program)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(2))
        .request_timeout(Some(REQUEST_TIMEOUT))
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis(100 * 2u64.pow(attempts.min(4) as u32))
        })
        .event_callback(move |event| {
            let said = said.clone();
            async move {
                match event {
                    Event::Disconnected => eprintln!(
                        "{program}: {said}: disconnected from the NATS server; waiting for it (reconnecting)"
                    ),
                    Event::Connected => eprintln!("{program}: {said}: connected"),
                    Event::ServerError(e) => eprintln!("{program}: {said}: server error: {e}"),
                    _ => {}
                }
            }
        });
    if let Some(creds) = &args.creds {
        options = options
            .credentials_file(creds)
            .await
            .with_context(|| format!("reading the credentials file {}", creds.display()))?;
    }
    if let Some(ca) = &args.tls_ca {
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let Some(pair) = &args.tls_cert {
        options = options.add_client_certificate(pair[0].clone(), pair[1].clone());
    }
    if args.tls {
        options = options.require_tls(true);
    }
    let urls: Vec<async_nats::ServerAddr> = args
        .server
        .iter()
        .map(|s| {
            s.parse()
                .map_err(|e| anyhow::anyhow!("--server {s:?}: not a NATS server address: {e}"))
        })
        .collect::<anyhow::Result<_>>()?;
    let client = options
        .connect(urls)
        .await
        .with_context(|| format!("{servers}: connecting"))?;
    Ok(jetstream::ContextBuilder::new()
        .timeout(REQUEST_TIMEOUT)
        .build(client))
}

/// The stream's configuration for `--create-stream`.
fn stream_config(args: &NatsArgs) -> stream::Config {
    stream::Config {
        name: args.stream.clone(),
        subjects: vec![args.subject.clone()],
        retention: match args.retention {
            Retention::Limits => stream::RetentionPolicy::Limits,
            Retention::Interest => stream::RetentionPolicy::Interest,
            Retention::Workqueue => stream::RetentionPolicy::WorkQueue,
        },
        storage: stream::StorageType::File,
        num_replicas: args.replicas,
        duplicate_window: args.duplicate_window,
        ..Default::default()
    }
}

/// Finds the stream (creating it under `--create-stream`), waiting while the server is away
/// or the stream does not exist yet (saying so once). `Ok(None)`: a signal came first.
pub async fn stream(
    js: &Context,
    args: &NatsArgs,
    program: &str,
    signals: &Signals,
) -> anyhow::Result<Option<stream::Stream>> {
    let servers = servers(args);
    let mut told = None;
    loop {
        let problem = match js.get_stream(&args.stream).await {
            Ok(found) => return Ok(Some(found)),
            Err(e) => match e.kind() {
                GetStreamErrorKind::JetStream(j)
                    if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
                {
                    if args.create_stream {
                        match js.create_stream(stream_config(args)).await {
                            Ok(created) => {
                                eprintln!(
                                    "{program}: {servers}: created stream {} on subject {}",
                                    args.stream, args.subject
                                );
                                return Ok(Some(created));
                            }
                            Err(e) => match e.kind() {
                                // The server is away (the request timed out, no JetStream
                                // answered, the connection failed under it): wait and retry.
                                CreateStreamErrorKind::TimedOut
                                | CreateStreamErrorKind::JetStreamUnavailable
                                | CreateStreamErrorKind::Response => e.to_string(),
                                // Another bridge created it meanwhile (with another
                                // configuration, or the server would have said yes): look again.
                                CreateStreamErrorKind::JetStream(j)
                                    if j.error_code()
                                        == jetstream::ErrorCode::STREAM_NAME_EXIST =>
                                {
                                    continue
                                }
                                _ => {
                                    anyhow::bail!("{servers}: creating stream {}: {e}", args.stream)
                                }
                            },
                        }
                    } else {
                        format!(
                            "stream {} does not exist yet; waiting for it (give --create-stream to create it)",
                            args.stream
                        )
                    }
                }
                GetStreamErrorKind::JetStream(j) => {
                    anyhow::bail!("{servers}: stream {}: {j}", args.stream)
                }
                GetStreamErrorKind::InvalidStreamName | GetStreamErrorKind::EmptyName => {
                    anyhow::bail!("--stream {:?}: not a valid stream name", args.stream)
                }
                _ => format!("JetStream does not answer ({e}); waiting for it"),
            },
        };
        if told.as_ref() != Some(&problem) {
            eprintln!("{program}: {servers}: {problem}");
            told = Some(problem);
        }
        if sleep_or_signal(signals, RETRY).await {
            return Ok(None);
        }
    }
}

/// Sleeps `pause`, looking for signals meanwhile: `true` if one came.
pub async fn sleep_or_signal(signals: &Signals, pause: Duration) -> bool {
    let step = ringfile_cli::SIGNAL_POLL.min(pause);
    let mut slept = Duration::ZERO;
    while slept < pause {
        if signals.requested() {
            return true;
        }
        tokio::time::sleep(step).await;
        slept += step;
    }
    signals.requested()
}
