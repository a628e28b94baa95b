//! Serving: Discord's CDN paths. Images come as stored or as a variant (`?size=` any size
//! from 16 to 4096, made at the nearest of Discord's sizes at or above it; the extension
//! choosing png, jpg, webp or gif); attachments as stored, with byte ranges and, when signing
//! is on, only under a valid signature. Every answer has an ETag and is cacheable; a matching
//! `If-None-Match` gets 304. An address that misses too often gets 429 (see `misses`).

use std::collections::HashMap;
use std::future::Future;
use std::ops::Range;
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody, SizedStream};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::web::{self, Data, Path};
use actix_web::{guard, HttpRequest, HttpResponse, HttpResponseBuilder};
use bytes::Bytes;

use super::cache::{etag, VariantCache};
use super::imaging::{self, Format, ImageError};
use super::work::WorkError;
use super::{default_avatars, Cdn};
use crate::http::client_address::request_address;
use crate::http::error::retry_after;
use crate::state::AppState;
use crate::storage::{ImageArea, Key};

/// Images are immutable under their URLs (the hash or id changes with the content).
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const ATTACHMENT_CACHE: &str = "public, max-age=86400";

pub fn configure(cfg: &mut web::ServiceConfig) {
    let get = || web::route().guard(guard::Any(guard::Get()).or(guard::Head()));
    cfg.route(
        "/attachments/{channel_id}/{attachment_id}/{filename}",
        get().to(attachment),
    )
    .route(
        "/{area:avatars|banners|icons|splashes|role-icons}/{owner_id}/{file}",
        get().to(area_image),
    )
    .route(
        "/guilds/{guild_id}/users/{user_id}/avatars/{file}",
        get().to(member_avatar),
    )
    .route("/{kind:emojis|stickers}/{file}", get().to(asset))
    .route("/embed/avatars/{file}", get().to(default_avatar));
}

fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("application/json")
        .body(r#"{"message": "404: Not Found", "code": 0}"#)
}

fn bad_request(message: &'static str) -> HttpResponse {
    HttpResponse::BadRequest()
        .content_type("application/json")
        .body(format!(r#"{{"message": "{message}", "code": 0}}"#))
}

/// Discord's 429, for an address that missed too often.
fn too_many(wait: Duration) -> HttpResponse {
    let seconds = wait.as_secs_f64();
    HttpResponse::TooManyRequests()
        .insert_header((header::RETRY_AFTER, seconds.ceil().max(1.0).to_string()))
        .content_type("application/json")
        .body(format!(
            r#"{{"message": "You are being rate limited.", "retry_after": {seconds:.3}, "global": false, "code": 0}}"#
        ))
}

/// `serve`'s answer, unless the caller's address has missed too often lately (it is walking
/// ids): then 429 before anything is looked up. A 404 counts as a miss.
async fn guarded(
    req: &HttpRequest,
    state: &AppState,
    serve: impl Future<Output = HttpResponse>,
) -> HttpResponse {
    let address = request_address(req, &state.config());
    if let Some(Err(wait)) = address.map(|address| state.cdn.misses.check(address)) {
        return too_many(wait);
    }
    let response = serve.await;
    if let (StatusCode::NOT_FOUND, Some(address)) = (response.status(), address) {
        state.cdn.misses.record(address);
    }
    response
}

fn query(req: &HttpRequest) -> HashMap<String, String> {
    web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default()
}

/// `{stem}.{extension}` of a file segment.
fn split_file(file: &str) -> Option<(&str, &str)> {
    file.rsplit_once('.')
}

fn image_area(name: &str) -> Option<ImageArea> {
    Some(match name {
        "avatars" => ImageArea::Avatar,
        "banners" => ImageArea::Banner,
        "icons" => ImageArea::Icon,
        "splashes" => ImageArea::Splash,
        "role-icons" => ImageArea::RoleIcon,
        _ => return None,
    })
}

/// `/avatars/{user_id}/{hash}.{ext}` and the other per-owner images.
async fn area_image(
    req: HttpRequest,
    state: Data<AppState>,
    path: Path<(String, String, String)>,
) -> HttpResponse {
    guarded(&req, &state, async {
        let (area, owner, file) = path.into_inner();
        let Some((hash, extension)) = split_file(&file) else {
            return not_found();
        };
        let key = image_area(&area)
            .zip(owner.parse::<i64>().ok())
            .and_then(|(area, owner)| Key::image(area, owner, hash));
        match key {
            Some(key) => image(&req, &state.cdn, &key, extension).await,
            None => not_found(),
        }
    })
    .await
}

/// `/guilds/{guild_id}/users/{user_id}/avatars/{hash}.{ext}`.
async fn member_avatar(
    req: HttpRequest,
    state: Data<AppState>,
    path: Path<(String, String, String)>,
) -> HttpResponse {
    guarded(&req, &state, async {
        let (guild, user, file) = path.into_inner();
        let Some((hash, extension)) = split_file(&file) else {
            return not_found();
        };
        let key = match (guild.parse::<i64>(), user.parse::<i64>()) {
            (Ok(guild), Ok(user)) => Key::member_avatar(guild, user, hash),
            _ => None,
        };
        match key {
            Some(key) => image(&req, &state.cdn, &key, extension).await,
            None => not_found(),
        }
    })
    .await
}

/// `/emojis/{id}.{ext}` and `/stickers/{id}.{ext}`.
async fn asset(
    req: HttpRequest,
    state: Data<AppState>,
    path: Path<(String, String)>,
) -> HttpResponse {
    guarded(&req, &state, async {
        let (kind, file) = path.into_inner();
        let Some((id, extension)) = split_file(&file) else {
            return not_found();
        };
        let key = match (kind.as_str(), id.parse::<i64>()) {
            ("emojis", Ok(id)) => Key::emoji(id),
            ("stickers", Ok(id)) => Key::sticker(id),
            _ => None,
        };
        match key {
            Some(key) => image(&req, &state.cdn, &key, extension).await,
            None => not_found(),
        }
    })
    .await
}

/// `/embed/avatars/{0-5}.png`: drawn at start, served from memory.
async fn default_avatar(
    req: HttpRequest,
    state: Data<AppState>,
    path: Path<String>,
) -> HttpResponse {
    let index = path
        .strip_suffix(".png")
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n < default_avatars::COUNT);
    match index.and_then(|n| state.cdn.default_avatar(n)) {
        Some(bytes) => {
            let tag = etag(&format!("embed/avatars/{path}"));
            respond(&req, StatusCode::OK, bytes, "image/png", &tag, IMMUTABLE)
        }
        None => not_found(),
    }
}

/// The sizes variants are made in (Discord's): an asked size is served at the first at or
/// above it, so any size costs at most this many variants of an image.
const SIZES: [u32; 31] = [
    16, 20, 22, 24, 28, 32, 40, 44, 48, 56, 60, 64, 80, 96, 100, 128, 160, 240, 256, 300, 320, 480,
    512, 600, 640, 1024, 1280, 1536, 2048, 3072, 4096,
];

/// `?size=`: absent, or from 16 to 4096 (`Err` for anything else), as one of [`SIZES`].
fn requested_size(req: &HttpRequest) -> Result<Option<u32>, ()> {
    match query(req).get("size") {
        None => Ok(None),
        Some(text) => match text.parse::<u32>() {
            Ok(size) if size >= 16 => SIZES
                .iter()
                .copied()
                .find(|s| *s >= size)
                .map(Some)
                .ok_or(()),
            _ => Err(()),
        },
    }
}

/// A stored image as `extension` asks, at `?size=`: from the memory cache, the disk cache, or
/// made now from the original (then cached).
async fn image(req: &HttpRequest, cdn: &Cdn, key: &Key, extension: &str) -> HttpResponse {
    let Some(format) = Format::from_extension(&extension.to_ascii_lowercase()) else {
        return bad_request("unsupported image extension");
    };
    let Ok(size) = requested_size(req) else {
        return bad_request("size must be a number from 16 to 4096");
    };
    let variant = match size {
        Some(size) => format!("{size}.{}", format.extension()),
        None => format!("full.{}", format.extension()),
    };
    let id = VariantCache::id(key, &variant);
    let tag = etag(&id);
    let answer = |bytes: Bytes| {
        respond(
            req,
            StatusCode::OK,
            bytes,
            format.content_type(),
            &tag,
            IMMUTABLE,
        )
    };
    if let Some(bytes) = cdn.cache.get(&id).await {
        return answer(bytes);
    }
    let original = match cdn.storage.get(key, None).await {
        Ok(Some(object)) => object.bytes,
        Ok(None) => return not_found(),
        Err(error) => {
            tracing::error!(%error, %key, "cannot read a stored image");
            return HttpResponse::InternalServerError().finish();
        }
    };
    if size.is_none() && imaging::sniff(&original) == Some(format) {
        return answer(original);
    }
    let budget = cdn.budget(cdn.config.max_image_pixels);
    let made = cdn
        .work
        .run(move || imaging::convert(&original, size, format, budget))
        .await;
    match made {
        Ok(Ok(bytes)) => {
            let bytes = Bytes::from(bytes);
            cdn.cache.put(&id, bytes.clone()).await;
            answer(bytes)
        }
        Ok(Err(ImageError::TooLarge(_))) => bad_request("image too large to convert"),
        Ok(Err(error)) => {
            tracing::debug!(%error, %key, "stored file is no image this server converts");
            HttpResponse::UnsupportedMediaType().finish()
        }
        Err(WorkError::Busy) => HttpResponse::ServiceUnavailable()
            .insert_header(retry_after())
            .finish(),
        Err(WorkError::Failed) => {
            tracing::error!(%key, "image conversion failed");
            HttpResponse::InternalServerError().finish()
        }
    }
}

/// `/attachments/{channel_id}/{attachment_id}/{filename}`.
async fn attachment(
    req: HttpRequest,
    state: Data<AppState>,
    path: Path<(String, String, String)>,
) -> HttpResponse {
    guarded(&req, &state, async {
        let (channel, attachment, filename) = path.into_inner();
        let key = match (channel.parse::<i64>(), attachment.parse::<i64>()) {
            (Ok(channel), Ok(attachment)) => Key::attachment(channel, attachment, &filename),
            _ => None,
        };
        let Some(key) = key else {
            return not_found();
        };
        let cdn = &state.cdn;
        let params = query(&req);
        let signed = cdn.signer.allows(
            &format!("/{key}"),
            params.get("ex").map(String::as_str),
            params.get("is").map(String::as_str),
            params.get("hm").map(String::as_str),
        );
        if !signed {
            return not_found();
        }
        let total = match cdn.storage.size(&key).await {
            Ok(Some(total)) => total,
            Ok(None) => return not_found(),
            Err(error) => {
                tracing::error!(%error, %key, "cannot read an attachment");
                return HttpResponse::InternalServerError().finish();
            }
        };
        let range = match req
            .headers()
            .get(header::RANGE)
            .map(|v| parse_range(v, total))
        {
            None | Some(RangeRequest::Ignored) => None,
            Some(RangeRequest::Satisfiable(range)) => Some(range),
            Some(RangeRequest::Unsatisfiable) => {
                return HttpResponse::RangeNotSatisfiable()
                    .insert_header((header::CONTENT_RANGE, format!("bytes */{total}")))
                    .finish()
            }
        };
        // The type comes from the file's first bytes, whatever part was asked for.
        let head = match cdn.storage.get(&key, Some(0..16)).await {
            Ok(Some(object)) => object.bytes,
            Ok(None) => return not_found(),
            Err(error) => {
                tracing::error!(%error, %key, "cannot read an attachment");
                return HttpResponse::InternalServerError().finish();
            }
        };
        let content_type = imaging::content_type(&head, &filename);
        let tag = etag(key.as_str());
        let wanted = range.clone().unwrap_or(0..total);
        // Streamed, so a client that never reads holds a piece of the file, not all of it.
        let body = if wanted.is_empty() || client_holds(&req, &tag) {
            BoxBody::new(Bytes::new())
        } else {
            match cdn.storage.stream(&key, wanted.clone()).await {
                Ok(Some(stream)) => {
                    BoxBody::new(SizedStream::new(wanted.end - wanted.start, stream))
                }
                Ok(None) => return not_found(),
                Err(error) => {
                    tracing::error!(%error, %key, "cannot read an attachment");
                    return HttpResponse::InternalServerError().finish();
                }
            }
        };
        match range {
            None => respond(
                &req,
                StatusCode::OK,
                body,
                content_type,
                &tag,
                ATTACHMENT_CACHE,
            ),
            Some(range) => {
                let mut response = respond(
                    &req,
                    StatusCode::PARTIAL_CONTENT,
                    body,
                    content_type,
                    &tag,
                    ATTACHMENT_CACHE,
                );
                if response.status() == StatusCode::PARTIAL_CONTENT {
                    let value = format!("bytes {}-{}/{total}", range.start, range.end - 1);
                    if let Ok(value) = HeaderValue::from_str(&value) {
                        response.headers_mut().insert(header::CONTENT_RANGE, value);
                    }
                }
                response
            }
        }
    })
    .await
}

enum RangeRequest {
    /// No usable single byte range: the whole file is sent.
    Ignored,
    Satisfiable(Range<u64>),
    Unsatisfiable,
}

/// A single `bytes=` range of a `total`-byte file (half-open).
fn parse_range(value: &HeaderValue, total: u64) -> RangeRequest {
    let Some(spec) = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return RangeRequest::Ignored;
    };
    if spec.contains(',') {
        return RangeRequest::Ignored;
    }
    let Some((start, end)) = spec.split_once('-') else {
        return RangeRequest::Ignored;
    };
    let (start, end) = (start.trim(), end.trim());
    let range = match (start.parse::<u64>(), end.parse::<u64>()) {
        (Ok(start), Ok(end)) if start <= end => start..end.saturating_add(1).min(total),
        (Ok(start), Err(_)) if end.is_empty() => start..total,
        (Err(_), Ok(suffix)) if start.is_empty() => total.saturating_sub(suffix)..total,
        _ => return RangeRequest::Ignored,
    };
    if range.start >= total || range.is_empty() {
        RangeRequest::Unsatisfiable
    } else {
        RangeRequest::Satisfiable(range)
    }
}

/// Whether the request's `If-None-Match` names `tag`: the client holds these bytes already.
fn client_holds(req: &HttpRequest, tag: &str) -> bool {
    req.headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"))
}

/// The answer with its caching headers; 304 when the client holds these bytes already.
fn respond(
    req: &HttpRequest,
    status: StatusCode,
    body: impl MessageBody + 'static,
    content_type: &str,
    tag: &str,
    cache_control: &str,
) -> HttpResponse {
    let held = client_holds(req, tag);
    let mut builder = if held {
        HttpResponse::NotModified()
    } else {
        HttpResponseBuilder::new(status)
    };
    builder
        .insert_header((header::ETAG, tag))
        .insert_header((header::CACHE_CONTROL, cache_control))
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    if held {
        return builder.finish();
    }
    builder.content_type(content_type).body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(text: &'static str, total: u64) -> Option<Range<u64>> {
        match parse_range(&HeaderValue::from_static(text), total) {
            RangeRequest::Satisfiable(range) => Some(range),
            _ => None,
        }
    }

    #[test]
    fn sizes_snap_up_to_the_ladder() {
        let size = |query: &str| {
            let req =
                actix_web::test::TestRequest::with_uri(&format!("/x{query}")).to_http_request();
            requested_size(&req)
        };
        assert_eq!(size(""), Ok(None));
        assert_eq!(size("?size=96"), Ok(Some(96)));
        assert_eq!(size("?size=97"), Ok(Some(100)));
        assert_eq!(size("?size=16"), Ok(Some(16)));
        assert_eq!(size("?size=4096"), Ok(Some(4096)));
        for bad in ["?size=15", "?size=4097", "?size=x", "?size=-1"] {
            assert_eq!(size(bad), Err(()), "{bad}");
        }
    }

    #[test]
    fn byte_ranges() {
        assert_eq!(range("bytes=0-9", 100), Some(0..10));
        assert_eq!(range("bytes=90-", 100), Some(90..100));
        assert_eq!(range("bytes=-10", 100), Some(90..100));
        assert_eq!(range("bytes=95-200", 100), Some(95..100));
        assert!(matches!(
            parse_range(&HeaderValue::from_static("bytes=100-"), 100),
            RangeRequest::Unsatisfiable
        ));
        assert!(matches!(
            parse_range(&HeaderValue::from_static("bytes=0-1,5-6"), 100),
            RangeRequest::Ignored
        ));
    }
}
