//! The agent's HTTP side: the page, `GET /api/topology`, the WebSocket at `/ws`, and with
//! `--traces DIR` the operator's trace files at `/traces/NAME`.
//!
//! [`bind`] claims the address first and reports a taken port as [`ServerError::AddrInUse`]
//! (so `main` can say so in one line); [`BoundServer::serve`] then runs until the shutdown
//! future resolves.

mod assets;
pub mod guard;
pub mod hub;
pub mod kept;
mod traces;
mod ws;

use std::{future::Future, io, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use axum::{Json, Router, extract::State, routing::get};
use coreplay_shared::{Topology, event::Fidelity, watch::WatchProgram};
use tokio::net::TcpListener;

pub use assets::{BUILD_HINT, page_files, page_is_built};

/// What the server needs to know, fixed for its lifetime.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on (`127.0.0.1:7878` by default; port 0 picks a free one).
    pub listen: SocketAddr,
    /// The topology every client is told about.
    pub topology: Topology,
    /// The `coreplay` executable (worker and server processes of runs).
    pub exe: PathBuf,
    /// Hard cap on a run's duration.
    pub run_cap: Duration,
    /// How runs record events.
    pub fidelity: Fidelity,
    /// Why runs are not exact, when they are not.
    pub fidelity_note: Option<String>,
    /// Who may connect.
    pub access: guard::Access,
    /// Programs the page may start and watch (fixed by the operator; see
    /// [`crate::watch::default_programs`]).
    pub watch_programs: Vec<WatchProgram>,
    /// A folder of trace files served read-only at `/traces/NAME` (canonical), if any; live
    /// runs that end are kept there too.
    pub traces: Option<PathBuf>,
    /// Whether that folder is the agent's own default (old runs are pruned from it).
    pub traces_own: bool,
}

/// Shared state of the handlers.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) topology: Topology,
    pub(crate) can_run: bool,
    pub(crate) hub: Arc<hub::Hub>,
    pub(crate) fidelity_note: Option<String>,
    pub(crate) access: guard::Access,
    pub(crate) local_addr: SocketAddr,
    pub(crate) traces: Option<PathBuf>,
}

/// Failures to start or run the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Another program listens on the address already.
    #[error(
        "{addr} is already in use (is another coreplay running?); choose another with --listen, \
         e.g. --listen 127.0.0.1:0 for any free port"
    )]
    AddrInUse {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The address cannot be listened on for another reason (permissions, not local, …).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        source: io::Error,
    },
    /// The server stopped with an I/O error.
    #[error("server failed: {0}")]
    Serve(io::Error),
}

/// A server that holds its listening socket but does not serve yet.
#[derive(Debug)]
pub struct BoundServer {
    listener: TcpListener,
    state: Arc<AppState>,
}

/// Binds the listening socket.
pub async fn bind(config: ServerConfig) -> Result<BoundServer, ServerError> {
    let addr = config.listen;
    let listener = TcpListener::bind(addr).await.map_err(|source| {
        if source.kind() == io::ErrorKind::AddrInUse {
            ServerError::AddrInUse { addr }
        } else {
            ServerError::Bind { addr, source }
        }
    })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| ServerError::Bind { addr, source })?;
    Ok(BoundServer {
        listener,
        state: Arc::new(AppState {
            can_run: config.topology.machine.source.is_live(),
            hub: Arc::new(
                hub::Hub::new(
                    u32::try_from(config.topology.pu_count()).unwrap_or(u32::MAX),
                    config.exe,
                    config.run_cap,
                    config.fidelity,
                )
                .with_watch_programs(config.watch_programs)
                .with_keeper(config.traces.clone().map(|dir| kept::Keeper {
                    dir,
                    topology: config.topology.clone(),
                    own_folder: config.traces_own,
                })),
            ),
            fidelity_note: config.fidelity_note,
            access: config.access,
            local_addr,
            traces: config.traces,
            topology: config.topology,
        }),
    })
}

impl BoundServer {
    /// The address actually bound (differs from the one asked for when the port was 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The run hub (for benchmarks that feed it directly).
    pub fn hub(&self) -> Arc<hub::Hub> {
        Arc::clone(&self.state.hub)
    }

    /// Serves until `shutdown` resolves, then lets open requests finish.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let hub = Arc::clone(&self.state.hub);
        let closing = Arc::clone(&hub);
        let shutdown = async move {
            shutdown.await;
            // Sessions end once their queues close; the run is cancelled.
            closing.shutdown();
        };
        let served = axum::serve(self.listener, router(self.state))
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(ServerError::Serve);
        // Threads and child processes of a cancelled run end within milliseconds.
        let idle = tokio::task::spawn_blocking(move || hub.wait_idle(Duration::from_secs(5)))
            .await
            .unwrap_or(false);
        if !idle {
            tracing::warn!("the run did not stop within 5 s of shutdown");
        }
        served
    }
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/ws", get(ws::upgrade))
        .route("/api/topology", get(topology))
        .route("/traces/{name}", get(traces::serve))
        .fallback(get(assets::serve))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            guard::guard,
        ))
        .with_state(state)
}

async fn topology(State(state): State<Arc<AppState>>) -> Json<Topology> {
    Json(state.topology.clone())
}
