//! The route table checked against the server: every route in the served OpenAPI document, and every
//! route `server/src` adds by hand, has a row; every row a route; every report format its rows.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::routes::{NON_API, routes};
use super::world::World;

/// The enum values a schema allows, following `$ref`s and combinators.
pub(super) fn enum_values(doc: &Value, schema: &Value) -> Vec<String> {
    if let Some(values) = schema["enum"].as_array() {
        return values.iter().filter_map(|v| v.as_str().map(str::to_string)).collect();
    }
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap();
        return enum_values(doc, &doc["components"]["schemas"][name]);
    }
    ["oneOf", "anyOf", "allOf"]
        .iter()
        .filter_map(|k| schema[k].as_array())
        .flatten()
        .flat_map(|s| enum_values(doc, s))
        .collect()
}

/// The paths `server/src` routes by hand (`.route("…"`), outside the OpenAPI document.
pub(super) fn hand_routed_paths() -> BTreeSet<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/src");
    let mut paths = BTreeSet::new();
    let mut files: Vec<PathBuf> = vec![src];
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if p.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        for marker in [
            ".nest(",
            ".nest_service(",
            ".route_service(",
            ".fallback(",
            ".fallback_service(",
        ] {
            assert!(
                !text.contains(marker),
                "{} routes with {marker}: give its routes rows in the authorization table",
                p.display()
            );
        }
        for (i, _) in text.match_indices(".route(") {
            let rest = text[i + ".route(".len()..].trim_start();
            let path = rest.strip_prefix('"').and_then(|r| r.split('"').next());
            paths.insert(path.expect("a .route( with a literal path").to_string());
        }
    }
    paths
}

/// Every route the server serves has a row, every row a route, and every report format its rows.
pub(super) async fn assert_table_is_complete(w: &World) {
    let doc: Value = w.api.json("/v1/openapi.json", &[]).await;
    let table = routes();
    let mut served = BTreeSet::new();
    let mut formats = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            if !["get", "post", "put", "patch", "delete", "head", "options", "trace"].contains(&method.as_str()) {
                continue;
            }
            served.insert((method.clone(), path.clone()));
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["name"] == "format" {
                    let mut values = enum_values(&doc, &p["schema"]);
                    if values.is_empty() {
                        // The document refers to a `Format` schema it does not define: take the
                        // formats `server/src/http/reports.rs` documents.
                        values = ["json", "csv", "xlsx"].map(String::from).to_vec();
                    }
                    for v in values {
                        formats.insert((method.clone(), path.clone(), v));
                    }
                }
            }
        }
    }
    let hand = hand_routed_paths();
    let listed: BTreeSet<String> = NON_API.iter().map(|(_, p)| p.to_string()).collect();
    assert_eq!(hand, listed, "the routes server/src adds outside the OpenAPI document");
    for (m, p) in NON_API {
        assert!(
            !served.contains(&(m.to_string(), p.to_string())),
            "{p} is in the OpenAPI document now: drop it from NON_API"
        );
        served.insert((m.to_string(), p.to_string()));
    }
    let rows: BTreeSet<(String, String)> = table
        .iter()
        .map(|r| (r.method.verb().to_string(), r.path.to_string()))
        .collect();
    let missing: Vec<_> = served.difference(&rows).collect();
    let extra: Vec<_> = rows.difference(&served).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "routes without a row: {missing:?}; rows without a route: {extra:?}"
    );
    let format_rows: BTreeSet<(String, String, String)> = table
        .iter()
        .filter_map(|r| {
            r.format
                .map(|f| (r.method.verb().to_string(), r.path.to_string(), f.to_string()))
        })
        .collect();
    assert_eq!(format_rows, formats, "a row per report and format");
}
