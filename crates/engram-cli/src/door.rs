//! Where a command's operation goes: the one place the CLI decides
//! "running or not", the same way for every declared operation.
//!
//! - An Engram runs on the data directory (it holds the writer lock):
//!   operations go to it through its loopback API ([`Client`]) — except
//!   reads declared `anywhere`, which read the data directory directly
//!   (read-only, never queued behind the writer). If it runs but its API
//!   cannot be reached, those reads still work and everything else is
//!   `locked`.
//! - None runs: operations the declaration lets run offline go to the data
//!   directory ([`Offline`]); the others are `runtime_stopped`.

use engram_core::api::{ByteOperation, Offline, Operation, Runs, operations::not_running};
use engram_core::runtime::DataDirLock;
use engram_core::{Error, ErrorCode, Result};
use engram_http::client::Client;
use std::path::Path;

/// A data directory, and the running Engram on it if there is one.
pub struct Door {
    offline: Offline,
    /// Some when an Engram holds the directory: its API, or why it cannot
    /// be reached.
    remote: Option<std::result::Result<Client, (ErrorCode, String)>>,
}

impl Door {
    pub fn new(data_dir: &Path) -> Door {
        let remote = DataDirLock::is_held(data_dir)
            .map(|_| Client::find(data_dir).map_err(|e| (e.code(), e.to_string())));
        Door {
            offline: Offline::new(data_dir),
            remote,
        }
    }

    /// Whether an Engram runs on the directory.
    pub fn running(&self) -> bool {
        self.remote.is_some()
    }

    /// The directory's own API (exports, which write a file here, read it
    /// directly even beside a running Engram).
    pub fn offline(&self) -> &Offline {
        &self.offline
    }

    /// Calls one declared operation where the policy above sends it.
    pub fn call<O: Operation>(&self, key: O::Key, request: O::Request) -> Result<O::Response> {
        match (&self.remote, O::RUNS) {
            (_, Runs::Anywhere) | (None, Runs::Stopped) => {
                O::call_offline(&self.offline, key, request)
            }
            (None, Runs::Running) => Err(not_running(O::NAME)),
            (Some(Ok(client)), _) => client.call::<O>(key, request),
            (Some(Err((code, message))), _) => Err(Error::Remote {
                code: *code,
                message: message.clone(),
            }),
        }
    }

    /// The running Engram's API for a byte operation (none runs: None).
    pub fn remote_for<O: ByteOperation>(&self) -> Option<Result<&Client>> {
        self.remote.as_ref().map(|r| {
            r.as_ref().map_err(|(code, message)| Error::Remote {
                code: *code,
                message: format!("{}: {message}", O::NAME),
            })
        })
    }
}
