//! Entry point: parse flags, set up logging and the communicator, hand over to `app`, map the outcome to an exit
//! code (0 ok, 1 a scene or the run failed, 2 usage).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = terrafarm::cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cli.log));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(terrafarm::redact::stderr).with_target(false).with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init();
    let comm = match terrafarm::comm::world() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("terrafarm: error: {}", terrafarm::redact::redact(&e.to_string()));
            return ExitCode::from(1);
        }
    };
    if comm.size() > 1 {
        // A panic on one rank must not leave the others waiting in a collective: print it, then end this process
        // abnormally so the launcher tears the whole job down (Open MPI's mpirun does on any abnormal exit).
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            default(info);
            std::process::abort();
        }));
    }
    ExitCode::from(terrafarm::app::run(cli, comm.as_ref()))
}
