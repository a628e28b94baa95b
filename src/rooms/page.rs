//! The `/rooms/` web page and `/rooms/client.js`, the client module integrators import: static
//! files from `web/rooms/`, embedded in the binary so a deployment is the one file. Plain ES
//! modules, no build step; the page loads nothing from anywhere else, and its Content Security
//! Policy says so.

use actix_web::http::header;
use actix_web::web;
use actix_web::HttpResponse;

/// Only this origin's scripts, styles and connections (the WebSocket included: `'self'`
/// covers `ws:`/`wss:` on the same host); no inline code, no plugins, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
     img-src 'self' data:; media-src 'self' blob: mediastream:; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

const HTML: &str = "text/html; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The page's files: path, content type, body.
const FILES: [(&str, &str, &str); 4] = [
    // `NormalizePath::trim` makes `/rooms/` reach `/rooms`, so the page links its files by
    // absolute path (relative ones would resolve against `/` when opened as `/rooms`).
    ("/rooms", HTML, include_str!("../../web/rooms/index.html")),
    (
        "/rooms/client.js",
        JAVASCRIPT,
        include_str!("../../web/rooms/client.js"),
    ),
    (
        "/rooms/app.js",
        JAVASCRIPT,
        include_str!("../../web/rooms/app.js"),
    ),
    (
        "/rooms/style.css",
        CSS,
        include_str!("../../web/rooms/style.css"),
    ),
];

pub fn configure(cfg: &mut web::ServiceConfig) {
    for (path, content_type, body) in FILES {
        cfg.service(
            web::resource(path)
                .route(web::get().to(move || async move { file(content_type, body) })),
        );
    }
}

fn file(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // A private room's link is its id: never hand the page's address to anyone.
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        // The files change with the binary: browsers revalidate instead of keeping an old one.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}
