//! Entry point: parse flags, set up logging and the communicator, hand over to `app`, map the outcome to an exit
//! code (0 ok, 1 a scene or the run failed, 2 usage).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = terrafarm::cli::Cli::parse();
    // An explicit --log wins over RUST_LOG; RUST_LOG over the default (which hides wgpu's notes about optional Vulkan
    // extensions a software driver lacks).
    let filter = match &cli.log {
        Some(l) => tracing_subscriber::EnvFilter::new(l),
        None => {
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,wgpu_hal=error,wgpu_core=error"))
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(terrafarm::redact::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let comm = match terrafarm::comm::world() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("terrafarm: error: {}", terrafarm::redact::redact(&e.to_string()));
            return ExitCode::from(1);
        }
    };
    terrafarm::redact::install_panic_hook(comm.size() > 1);
    ExitCode::from(terrafarm::app::run(cli, comm.as_ref()))
}
