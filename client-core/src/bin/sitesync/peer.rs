//! The site mesh: exchange documents with another phone directly, no server (`peer listen`,
//! `peer sync`).

use std::io::Write;

use anyhow::Result;
use clap::Subcommand;
use sitesync_core::Store;
use sitesync_core::mesh::PeerError;
use sitesync_core::mesh::engine::PeerReport;
use sitesync_core::mesh::transport;

use crate::msg::Msg;
use crate::render::say;

/// Exchange with another phone of the company over the local network.
#[derive(Debug, Subcommand)]
pub enum PeerCmd {
    /// Serve peers until stopped (Ctrl-C): one line per exchange with the peer's device and user,
    /// documents sent and received, and changes refused.
    Listen {
        /// Address to listen on, e.g. 0.0.0.0:7420.
        #[arg(long)]
        listen: String,
    },
    /// One exchange with the phone listening at ADDR (host:port), then a summary (exit status 1 if
    /// it failed).
    Sync {
        /// The listening phone's address.
        #[arg(long)]
        peer: String,
    },
}

fn line(out: &mut impl Write, r: &PeerReport) -> Result<()> {
    say(
        out,
        Msg::PeerExchange {
            device: &r.peer_device,
            user: &r.peer_user,
            sent: r.sent,
            received: r.received,
            refused: r.refused_changes.len() + r.refused_docs.len(),
        },
    )
}

pub fn peer(store: &mut Store, out: &mut impl Write, cmd: PeerCmd) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    match cmd {
        PeerCmd::Sync { peer } => {
            let r = rt.block_on(transport::sync_with(store, &peer))?;
            line(out, &r)?;
            for n in &r.refused_changes {
                say(
                    out,
                    Msg::PeerFailed {
                        peer: &n.doc,
                        why: &format!("{} {}: {}", n.hash, n.rule, n.reason),
                    },
                )?;
            }
            Ok(())
        }
        PeerCmd::Listen { listen } => rt.block_on(async {
            let listener = tokio::net::TcpListener::bind(&listen).await?;
            let addr = listener.local_addr()?.to_string();
            say(out, Msg::PeerListening(&addr))?;
            out.flush()?;
            let stop = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            transport::listen(
                store,
                listener,
                stop,
                |from, outcome: &Result<PeerReport, PeerError>| {
                    let mut o = std::io::stdout().lock();
                    let _ = match outcome {
                        Ok(r) => line(&mut o, r),
                        Err(e) => say(
                            &mut o,
                            Msg::PeerFailed {
                                peer: &from.to_string(),
                                why: &e.to_string(),
                            },
                        ),
                    };
                    let _ = o.flush();
                },
            )
            .await?;
            Ok(())
        }),
    }
}
