//! The `inlet` command: `serve`, `migrate` and `token`.

use anyhow::Context;
use clap::{Parser, Subcommand};
use inlet_core::clock::rfc3339;
use inlet_server::{App, Config, Listeners, bootstrap};
use std::path::PathBuf;

// glibc's malloc serialises the runtime's threads on its arena locks under load
// (seen in profiles of the receiver); mimalloc keeps per-thread heaps.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "inlet",
    version,
    about = "Self-hosted webhook receiver and automation server"
)]
struct Cli {
    /// TOML configuration file (INLET_* environment variables override it).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
}

#[derive(Subcommand)]
enum TokenAction {
    /// Create a token and print it once.
    Create {
        #[arg(long)]
        name: String,
    },
    /// List tokens (never their values).
    List,
    /// Revoke a token by id or name.
    Revoke { id_or_name: String },
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("INLET_LOG").unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let cfg = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => serve(cfg).await,
        Command::Migrate => {
            bootstrap::prepare_data_dir(&cfg)?;
            let store = bootstrap::open_store(&cfg).await?;
            store.close().await;
            println!("migrations applied to {}", redact_url(&cfg.database_url()));
            Ok(())
        }
        Command::Token { action } => token(cfg, action).await,
    }
}

async fn serve(cfg: Config) -> anyhow::Result<()> {
    let shutdown = inlet_server::shutdown_signal();
    let listeners = Listeners::bind(&cfg).await?;
    let app = App::prepare(&cfg, listeners.public_addr()?).await?;
    let management = listeners.management.local_addr()?;
    println!("Inlet is running.");
    println!("  Web UI:   http://{management}/");
    println!("  API:      http://{management}/api/v1");
    println!("  Webhooks: {}/api/v1/webhooks/<key>", app.state.public_base_url);
    println!("  Database: {}", redact_url(&cfg.database_url()));
    println!(
        "  Packs:    {} pack(s), {} trigger(s) from {}{}",
        app.packs.packs,
        app.packs.triggers_seen,
        cfg.packs_dir.display(),
        if app.packs.errors.is_empty() {
            String::new()
        } else {
            format!(", {} file(s) with errors (see log)", app.packs.errors.len())
        }
    );
    if let Some(token) = &app.first_token {
        println!();
        println!("  First admin API token (shown once, stored only as a hash):");
        println!("    {}", token.expose());
        println!("  Use it as: Authorization: Bearer <token>");
    }
    println!();
    println!("Press Ctrl-C to stop.");
    app.serve(listeners, shutdown).await
}

async fn token(cfg: Config, action: TokenAction) -> anyhow::Result<()> {
    bootstrap::prepare_data_dir(&cfg)?;
    let store = bootstrap::open_store(&cfg).await?;
    let result = match action {
        TokenAction::Create { name } => {
            let token = bootstrap::create_token(&store, &name).await?;
            println!("{}", token.expose());
            Ok(())
        }
        TokenAction::List => {
            println!("{:<38} {:<20} {:<12} {:<22} STATUS", "ID", "NAME", "PREFIX", "CREATED");
            for t in store.list_tokens().await? {
                let status = match t.revoked_at {
                    Some(at) => format!("revoked {}", rfc3339(at)),
                    None => "active".into(),
                };
                println!(
                    "{:<38} {:<20} {:<12} {:<22} {status}",
                    t.id,
                    t.name,
                    t.prefix,
                    rfc3339(t.created_at)
                );
            }
            Ok(())
        }
        TokenAction::Revoke { id_or_name } => store
            .revoke_token(&id_or_name)
            .await
            .with_context(|| format!("no token with id or name {id_or_name:?}"))
            .map(|()| println!("revoked {id_or_name}")),
    };
    store.close().await;
    result
}

/// Database URLs may carry a password; show them without it.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_owned(),
    }
}
