//! The API's routes, all from the core's declaration: every JSON operation
//! through one generic handler ([`handle`]), the byte operations through
//! the few handlers below that stream their bodies. No route string is
//! typed here.

use crate::Shared;
use crate::extract::{Body, Form, Key, KeyName, Query, Raw, invalid};
use crate::reply::{Download, Reply, StateDownload, error_response};
use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::Method;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use engram_core::api::{ByteOperation, Operation, RequestIn, byte_op, op};
use engram_core::wire::LearnerState;
use engram_core::wire::{ApiError, Backup};
use engram_core::wire::{
    ExportRequest, QueryForm, ReadLearnerState, SaveLearnerState, SaveLearnerStateQuery,
};
use tokio_stream::StreamExt;

/// Every declared operation's route, under `/api`.
pub(crate) fn api_routes() -> Router<Shared> {
    macro_rules! json_routes {
        ($($name:ident)*) => {
            Router::new() $(.route(op::$name::PATH, json_route::<op::$name>()))*
        };
    }
    let router: Router<Shared> = engram_core::for_each_operation_name!(json_routes);
    router
        .route(
            byte_op::export_backup::PATH,
            byte_route::<byte_op::export_backup, _, _>(export_backup),
        )
        // Two uploads at a time are read into memory; more wait their turn
        // before their bodies are read (the API imports one at a time).
        .route(
            byte_op::import_snapshot::PATH,
            byte_route::<byte_op::import_snapshot, _, _>(import_snapshot)
                .layer(tower::limit::GlobalConcurrencyLimitLayer::new(2)),
        )
        .route(
            byte_op::read_learner_state::PATH,
            byte_route::<byte_op::read_learner_state, _, _>(read_learner_state),
        )
        .route(
            byte_op::save_learner_state::PATH,
            byte_route::<byte_op::save_learner_state, _, _>(save_learner_state),
        )
        .route(
            byte_op::events::PATH,
            byte_route::<byte_op::events, _, _>(events),
        )
}

/// The method filter of a declared method name.
fn method(name: &'static str) -> MethodFilter {
    Method::from_bytes(name.as_bytes())
        .ok()
        .and_then(|m| MethodFilter::try_from(m).ok())
        // The declaration names only GET, POST, PUT and DELETE; a test
        // walks every operation, so another name cannot go unnoticed.
        .unwrap_or(MethodFilter::GET)
}

fn json_route<O: Operation>() -> MethodRouter<Shared>
where
    O::Key: KeyName,
{
    on(method(O::METHOD), handle::<O>)
}

fn byte_route<O: ByteOperation, H, T>(handler: H) -> MethodRouter<Shared>
where
    H: axum::handler::Handler<T, Shared>,
    T: 'static,
{
    on(method(O::METHOD), handler)
}

/// Every JSON operation: its key from the path, its request from where the
/// declaration says, one call of the API, the reply.
async fn handle<O: Operation>(State(s): State<Shared>, req: Request) -> Response
where
    O::Key: KeyName,
{
    match parse::<O>(req).await {
        Ok((key, request)) => Reply(O::call(&s.api, key, request).await).into_response(),
        Err(refused) => refused.into_response(),
    }
}

async fn parse<O: Operation>(req: Request) -> Result<(O::Key, O::Request), Reply<()>>
where
    O::Key: KeyName,
{
    let (mut parts, body) = req.into_parts();
    let key = match O::KEY {
        None => serde_json::from_value(serde_json::Value::Null)
            .map_err(|e| invalid(format!("key: {e}")))?,
        Some(_) => Key::<O::Key>::from_request_parts(&mut parts, &()).await?.0,
    };
    let request = match O::REQUEST_IN {
        RequestIn::Nothing => O::Request::default(),
        RequestIn::Query => {
            let Query(form) = Query::<O::Form>::from_request_parts(&mut parts, &()).await?;
            form.into_request()
                .map_err(|e| Reply(Err(ApiError::from(e))))?
        }
        RequestIn::Body => {
            let req = Request::from_parts(parts, body);
            Body::<O::Request>::from_request(req, &()).await?.0
        }
    };
    Ok((key, request))
}

// ----- the byte operations: bodies streamed, files as downloads -------------

async fn export_backup(
    State(s): State<Shared>,
    Key(id): Key<i64>,
    Query(req): Query<ExportRequest>,
) -> Download {
    Download(s.api.export_backup(id, req).await)
}

async fn import_snapshot(State(s): State<Shared>, Raw(body): Raw) -> Reply<Backup> {
    Reply(s.api.import_snapshot(&body).await)
}

async fn read_learner_state(
    State(s): State<Shared>,
    Key(name): Key<String>,
    Query(req): Query<ReadLearnerState>,
) -> StateDownload {
    StateDownload(s.api.read_learner_state(name, req).await)
}

/// The body streams straight into the state's object (no size limit here:
/// the API stops at `MAX_LEARNER_STATE_BYTES`).
async fn save_learner_state(
    State(s): State<Shared>,
    Key(name): Key<String>,
    Form(meta, _): Form<SaveLearnerStateQuery, SaveLearnerState>,
    body: axum::body::Body,
) -> Reply<LearnerState> {
    Reply(
        s.api
            .save_learner_state(name, meta, body.into_data_stream())
            .await,
    )
}

async fn events(State(s): State<Shared>) -> Response {
    match s.api.events() {
        Ok(events) => Sse::new(events.map(|ev| SseEvent::default().json_data(ev)))
            .keep_alive(KeepAlive::default())
            .into_response(),
        Err(e) => error_response(e),
    }
}
