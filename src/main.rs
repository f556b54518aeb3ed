use std::process::ExitCode;

use clap::Parser;
use ipx::cli::{self, Cli, Cmd};
use ipx::config::LogFormat;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match cli.config() {
        Ok(c) => c,
        Err(e) => return cli::exit_with(Err(e)),
    };
    match cli.command {
        Cmd::Operator(command) => return cli::exit_with(cli::run_operator(&config, command)),
        Cmd::Backup { file } => return cli::exit_with(ipx::admin::backup::backup(&config, &file)),
        Cmd::Restore { file } => return cli::exit_with(ipx::admin::backup::restore(&config, &file)),
        Cmd::Serve { check: true, .. } => return cli::exit_with(Ok::<_, String>(format!("{config:#?}\n"))),
        Cmd::Serve { .. } => (),
    }
    init_logging(config.log.format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let running = match ipx::app::start(config.clone()).await {
            Ok(r) => r,
            Err(e) => return cli::exit_with(Err(e)),
        };
        if let Some(token) = &running.demo_token {
            println!(
                "First start of {}: imported the demo zones into team \"demo\".",
                config.store.data_dir.display()
            );
            println!("Demo API token (full access, shown once):\n{token}");
            println!(
                "Try:  dig @{} -p {} www.example.test A",
                running.dns_addr.ip(),
                running.dns_addr.port()
            );
            println!(
                "      curl -H 'Authorization: Bearer {token}' http://{}/v1/zones",
                running.api_addr
            );
        }
        if let Ok((zones, records)) = running.store.read(|r| r.counts()).await {
            tracing::info!(zones, records, "serving");
        }
        let signal = stop_signal().await;
        tracing::info!(signal, "shutting down: draining requests and jobs");
        running.shutdown().await;
        tracing::info!("stopped");
        ExitCode::SUCCESS
    })
}

/// Waits for SIGINT or SIGTERM (what systemd, Docker and Kubernetes send) and names it.
async fn stop_signal() -> &'static str {
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return "SIGINT";
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

/// Logs to stderr, as text or one JSON object a line (`[log] format`); `IPX_LOG` takes a
/// tracing filter. hickory logs every query at info, so it is held to warnings unless asked
/// for. In JSON, a line's own fields are at the top level and the request it belongs to is
/// in `span.request_id`.
fn init_logging(format: LogFormat) {
    let filter = std::env::var("IPX_LOG").unwrap_or_else(|_| "info,hickory_server=warn,hickory_net=warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        // A closed stderr must not take the server down (the default eprintln!s, which panics).
        .log_internal_errors(false);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}
