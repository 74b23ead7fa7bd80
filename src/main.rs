//! Entry point: parse flags, set up logging and the communicator, hand over to `app`, map the outcome to an exit
//! code (0 ok, 1 a scene or the run failed, 2 usage).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = terrafarm::cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cli.log));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init();
    let comm = match terrafarm::comm::world() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("terrafarm: error: {e}");
            return ExitCode::from(1);
        }
    };
    ExitCode::from(terrafarm::app::run(cli, comm.as_ref()))
}
