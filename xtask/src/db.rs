//! `cargo xtask db`: the persistent dev cluster `dev` in the checkout's cluster root
//! (`target/pg/dev`, or its place under the temporary directory: see `ClusterRoots`).

use std::process::ExitCode;

use clap::ValueEnum;

use crate::cluster::{Cluster, ClusterRoots, Durability};
use crate::pg_install::PgInstall;

/// The dev cluster's name in the checkout's cluster root.
const DEV: &str = "dev";

/// What `cargo xtask db` does with the dev cluster.
#[derive(Clone, Copy, ValueEnum)]
pub enum Action {
    Start,
    Stop,
    Status,
    Reset,
    Url,
}

pub fn run(action: Action) -> Result<ExitCode, String> {
    let install = PgInstall::find()?;
    let roots = ClusterRoots::of_workspace()?;
    let dev = Cluster::new(install.clone(), roots.locate(DEV));
    match action {
        Action::Start => {
            let dir = roots.place(DEV, &install)?;
            start(&Cluster::new(install, dir))?;
        }
        Action::Stop => stop(&dev)?,
        Action::Status => status(&dev)?,
        Action::Reset => {
            reset(&dev)?;
            roots.remove_temp_if_empty();
        }
        Action::Url => url(&dev)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Starts (or reuses) the dev cluster and returns its URL.
pub fn ensure_dev_running() -> Result<String, String> {
    let install = PgInstall::find()?;
    let dir = ClusterRoots::of_workspace()?.place(DEV, &install)?;
    let dev = Cluster::new(install, dir);
    if !dev.is_initialised() {
        dev.init(Durability::Durable)?;
    }
    if !dev.is_running() {
        dev.start()?;
        eprintln!("dev cluster started (log: {})", dev.log_file().display());
    }
    dev.url()
}

fn start(dev: &Cluster) -> Result<(), String> {
    if !dev.is_initialised() {
        dev.init(Durability::Durable)?;
    }
    if dev.is_running() {
        eprintln!("dev cluster already running");
    } else {
        dev.start()?;
        eprintln!("dev cluster started (log: {})", dev.log_file().display());
    }
    println!("{}", dev.url()?);
    Ok(())
}

fn stop(dev: &Cluster) -> Result<(), String> {
    if dev.is_running() {
        dev.stop()?;
        eprintln!("dev cluster stopped");
    } else {
        eprintln!("dev cluster is not running");
    }
    Ok(())
}

fn status(dev: &Cluster) -> Result<(), String> {
    if !dev.is_initialised() {
        println!("not created (`cargo xtask db start` creates it)");
    } else if dev.is_running() {
        println!("running: {} (in {})", dev.url()?, dev.dir().display());
    } else {
        println!("stopped: {} (in {})", dev.url()?, dev.dir().display());
    }
    Ok(())
}

fn reset(dev: &Cluster) -> Result<(), String> {
    if dev.is_running() {
        dev.stop()?;
    }
    if dev.dir().exists() {
        dev.remove()?;
        eprintln!("dev cluster deleted");
    } else {
        eprintln!("no dev cluster to delete");
    }
    Ok(())
}

fn url(dev: &Cluster) -> Result<(), String> {
    if !dev.is_initialised() {
        return Err("no dev cluster yet: run `cargo xtask db start`".to_owned());
    }
    if !dev.is_running() {
        eprintln!("note: the dev cluster is stopped; `cargo xtask db start` starts it");
    }
    println!("{}", dev.url()?);
    Ok(())
}
