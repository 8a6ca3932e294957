//! The Python client's table of routes, generated from the declared
//! operations: `clients/python/src/engram/routes.py`, so the client types
//! no route of its own. A test fails when the checked-in copy is stale
//! (`UPDATE_SNAPSHOTS=1 cargo test -p engram-core python` rewrites it).

use super::operations::{declared, declared_bytes, path_key};

/// The generated module.
pub fn routes_module() -> String {
    let mut out = String::from(
        "\"\"\"Every operation's route, generated from the operations declared in\n\
         `engram_core::api::operations`; do not edit. Regenerate:\n\
         `UPDATE_SNAPSHOTS=1 cargo test -p engram-core python`.\"\"\"\n\n\
         from __future__ import annotations\n\n\
         import urllib.parse\n\n\
         __all__ = [\"ROUTES\", \"route\"]\n\n\
         #: Every operation: its HTTP method, its path under ``/api`` and the name\n\
         #: of the key in it (None: none).\n\
         ROUTES: dict[str, tuple[str, str, str | None]] = {\n",
    );
    let mut rows: Vec<(String, &str, &str, Option<String>)> = declared()
        .into_iter()
        .map(|d| {
            (
                d.name.to_string(),
                d.method,
                d.path,
                d.key.map(str::to_string),
            )
        })
        .collect();
    for (name, method, path) in declared_bytes() {
        rows.push((
            name.to_string(),
            method,
            path,
            path_key(path).map(str::to_string),
        ));
    }
    for (name, method, path, key) in rows {
        let key = key.map_or("None".to_string(), |k| format!("{k:?}"));
        out.push_str(&format!("    {name:?}: ({method:?}, {path:?}, {key}),\n"));
    }
    out.push_str(
        "}\n\n\n\
         def route(op: str, key: str | int | None = None) -> tuple[str, str]:\n    \
         \"\"\"The method and the path (with ``/api`` and the key put in) of `op`.\"\"\"\n    \
         method, path, name = ROUTES[op]\n    \
         if name is not None:\n        \
         path = path.replace(\"{\" + name + \"}\", urllib.parse.quote(str(key), safe=\"\"))\n    \
         return method, \"/api\" + path\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    #[test]
    fn python_routes_are_up_to_date() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../clients/python/src/engram/routes.py");
        let want = super::routes_module();
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
            std::fs::write(&path, &want).expect("write");
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "{} is stale: run `UPDATE_SNAPSHOTS=1 cargo test -p engram-core python` and commit it",
            path.display()
        );
    }

    #[test]
    fn every_operation_has_a_python_route() {
        let m = super::routes_module();
        for d in crate::api::operations::declared() {
            assert!(
                m.contains(&format!("    {:?}: ({:?}, {:?},", d.name, d.method, d.path)),
                "{}",
                d.name
            );
        }
        for (name, _, _) in crate::api::operations::declared_bytes() {
            assert!(m.contains(&format!("    {name:?}: (")), "{name}");
        }
    }
}
