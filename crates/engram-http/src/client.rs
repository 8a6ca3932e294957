//! A typed client of a running Engram's API, from the same declaration as
//! the server's routes: `client.call::<op::learner>(name, ())` builds the
//! method, path, query string or body the declaration names and reads the
//! declared response, or the API's `{code, message}` as this process's
//! [`Error::Remote`]. Blocking (the CLI has no async runtime of its own).
//!
//! Must not: type a route string; every path comes from an [`Operation`]
//! or [`ByteOperation`].

use engram_core::api::{ByteOperation, Operation, RequestIn};
use engram_core::wire::{ApiError, QueryForm};
use engram_core::{Error, ErrorCode, Result};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::de::DeserializeOwned;
use std::path::Path;
use std::time::Duration;

/// Characters a path segment keeps as they are (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// How long one request may take (a restore or a verification of a large
/// database takes seconds; a stalled server must not hang the CLI).
const TIMEOUT: Duration = Duration::from_secs(120);

/// A running Engram's API on loopback.
pub struct Client {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client of `base` (`http://127.0.0.1:PORT`) with the access token.
    pub fn new(base: impl Into<String>, token: impl Into<String>) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(TIMEOUT))
            .build()
            .into();
        Client {
            base: base.into(),
            token: token.into(),
            agent,
        }
    }

    /// The running Engram of a data directory, found through the port and
    /// token it published there (`locked` when they cannot be read: it
    /// runs, but cannot be reached).
    pub fn find(data_dir: &Path) -> Result<Client> {
        let unreachable = |why: String| Error::Remote {
            code: ErrorCode::Locked,
            message: format!(
                "Engram runs on {} but its API cannot be reached ({why}); is it `engram serve` or the app?",
                data_dir.display()
            ),
        };
        let port = std::fs::read_to_string(data_dir.join(crate::PORT_FILE))
            .map_err(|e| unreachable(format!("{}: {e}", crate::PORT_FILE)))?;
        let port: u16 = port
            .trim()
            .parse()
            .map_err(|_| unreachable(format!("{} holds no port", crate::PORT_FILE)))?;
        let token = std::fs::read_to_string(data_dir.join(engram_core::access::TOKEN_FILE))
            .map_err(|e| unreachable(format!("{}: {e}", engram_core::access::TOKEN_FILE)))?;
        Ok(Client::new(
            format!("http://127.0.0.1:{port}"),
            token.trim(),
        ))
    }

    /// Calls one declared operation.
    pub fn call<O: Operation>(&self, key: O::Key, request: O::Request) -> Result<O::Response> {
        let mut url = self.url(O::PATH, O::KEY, &key.to_string());
        let body = match O::REQUEST_IN {
            RequestIn::Nothing => None,
            RequestIn::Query => {
                let form = O::Form::from_request(&request);
                let query = serde_urlencoded::to_string(&form)
                    .map_err(|e| Error::Encode(format!("{}: {e}", O::NAME)))?;
                if !query.is_empty() {
                    url = format!("{url}?{query}");
                }
                None
            }
            RequestIn::Body => {
                Some(serde_json::to_vec(&request).map_err(|e| Error::Encode(e.to_string()))?)
            }
        };
        let text = self.send(O::METHOD, &url, body.as_deref(), "application/json")?;
        decode(O::NAME, &text)
    }

    /// Sends `body` (raw bytes) to a byte operation and reads its JSON answer.
    pub fn send_bytes<O: ByteOperation, T: DeserializeOwned>(
        &self,
        key: Option<&str>,
        query: &str,
        body: &[u8],
    ) -> Result<T> {
        let text = self.send(
            O::METHOD,
            &self.byte_url::<O>(key, query),
            Some(body),
            "application/octet-stream",
        )?;
        decode(O::NAME, &text)
    }

    fn byte_url<O: ByteOperation>(&self, key: Option<&str>, query: &str) -> String {
        let url = self.url(O::PATH, O::key(), key.unwrap_or_default());
        if query.is_empty() {
            url
        } else {
            format!("{url}?{query}")
        }
    }

    /// The URL of a declared path with its key put in.
    fn url(&self, path: &str, key_name: Option<&str>, key: &str) -> String {
        let path = match key_name {
            Some(k) => path.replace(
                &format!("{{{k}}}"),
                &utf8_percent_encode(key, SEGMENT).to_string(),
            ),
            None => path.to_string(),
        };
        format!("{}/api{path}", self.base)
    }

    /// One request: the answer's bytes, or the API's error as this process's.
    fn send(
        &self,
        method: &str,
        url: &str,
        body: Option<&[u8]>,
        content_type: &str,
    ) -> Result<Vec<u8>> {
        let auth = format!("Bearer {}", self.token);
        let sent = match method {
            "GET" => self.agent.get(url).header("Authorization", &auth).call(),
            "DELETE" => self.agent.delete(url).header("Authorization", &auth).call(),
            m => {
                let req = match m {
                    "PUT" => self.agent.put(url),
                    _ => self.agent.post(url),
                }
                .header("Authorization", &auth);
                match body {
                    Some(b) => req.header("Content-Type", content_type).send(b),
                    None => req.send_empty(),
                }
            }
        };
        let mut resp = sent.map_err(|e| Error::Remote {
            code: ErrorCode::Locked,
            message: format!(
                "the running Engram's API did not answer at {}: {e}",
                self.base
            ),
        })?;
        let ok = resp.status().is_success();
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .map_err(|e| Error::io("read", url.to_string(), std::io::Error::other(e)))?;
        if ok {
            return Ok(bytes);
        }
        let e: ApiError = serde_json::from_slice(&bytes).map_err(|_| {
            Error::Internal(format!(
                "{url} answered {:.200}",
                String::from_utf8_lossy(&bytes)
            ))
        })?;
        Err(Error::Remote {
            code: e.code,
            message: e.message,
        })
    }
}

/// An answer read as the operation's response.
fn decode<T: DeserializeOwned>(operation: &str, answer: &[u8]) -> Result<T> {
    serde_json::from_slice(answer)
        .map_err(|e| Error::Internal(format!("reading the answer of {operation}: {e}")))
}
