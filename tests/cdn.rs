//! The CDN over real HTTP: attachments sent as multipart and through the pre-upload flow,
//! downloaded byte for byte; avatars, icons, emojis and stickers served resized and converted;
//! limits, path traversal, signed URLs, deletion, and the S3 backend against a real
//! S3-compatible server (moto, from PyPI).

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use awc::http::header::HeaderMap;
use awc::http::{Method, StatusCode};
use base64::Engine;
use image::{DynamicImage, ImageFormat, Rgba, RgbaImage};
use serde_json::{json, Value};

use crate::common::gateway::Gateway;
use crate::common::guild::text_channel;
use crate::common::http::{account, assert_form_error, get, patch, post, request, Account};
use crate::common::{python, Server, TestServer};

fn client() -> awc::Client {
    awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish()
}

/// A PNG with a gradient (so resizing has something to do).
pub(crate) fn png(width: u32, height: u32) -> Vec<u8> {
    let image = RgbaImage::from_fn(width, height, |x, y| {
        Rgba([(x % 256) as u8, (y % 256) as u8, 90, 255])
    });
    let mut out = Vec::new();
    DynamicImage::ImageRgba8(image)
        .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
        .unwrap();
    out
}

/// An animated GIF of three frames.
fn animated_gif(size: u32) -> Vec<u8> {
    use image::codecs::gif::{GifEncoder, Repeat};
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut out);
        encoder.set_repeat(Repeat::Infinite).unwrap();
        let frames = (0..3u8).map(|i| {
            image::Frame::new(RgbaImage::from_pixel(
                size,
                size,
                Rgba([i * 100, 50, 0, 255]),
            ))
        });
        encoder.encode_frames(frames).unwrap();
    }
    out
}

pub(crate) fn data_url(mime: &str, bytes: &[u8]) -> String {
    format!(
        "data:{mime};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// Some bytes that are no image and compress badly.
fn noise(length: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..length)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// One part of a multipart body: (field name, file name, bytes).
pub(crate) type Part<'a> = (&'a str, Option<&'a str>, &'a [u8]);

pub(crate) fn multipart(parts: &[Part<'_>]) -> (String, Vec<u8>) {
    let boundary = "spacebar-test-boundary-7d93";
    let mut body = Vec::new();
    for (name, filename, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(filename) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Sends `bytes` as the attachment `filename` of a message in `channel`: its URL.
pub(crate) async fn attach(
    server: &impl Server,
    owner: &Account,
    channel: &str,
    filename: &str,
    bytes: &[u8],
) -> String {
    let (content_type, body) = multipart(&[("files[0]", Some(filename), bytes)]);
    let mut sent = client()
        .post(server.url(&format!("/api/v9/channels/{channel}/messages")))
        .insert_header(("Authorization", owner.token.as_str()))
        .insert_header(("Content-Type", content_type))
        .send_body(body)
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);
    let sent: Value = sent.json().limit(1 << 20).await.unwrap();
    sent["attachments"][0]["url"].as_str().unwrap().to_string()
}

pub(crate) struct Fetched {
    pub(crate) status: StatusCode,
    headers: HeaderMap,
    bytes: Vec<u8>,
}

impl Fetched {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// Any request with a raw body; `target` is a path or an absolute URL.
async fn send(
    server: &TestServer,
    method: Method,
    target: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Fetched {
    let url = if target.starts_with("http") {
        target.to_string()
    } else {
        server.url(target)
    };
    let mut request = client().request(method, url);
    for (name, value) in headers {
        request = request.insert_header((*name, *value));
    }
    let mut response = request.send_body(body).await.unwrap();
    let bytes = response.body().limit(64 << 20).await.unwrap().to_vec();
    Fetched {
        status: response.status(),
        headers: response.headers().clone(),
        bytes,
    }
}

pub(crate) async fn fetch(server: &TestServer, target: &str, headers: &[(&str, &str)]) -> Fetched {
    send(server, Method::GET, target, headers, Vec::new()).await
}

async fn send_multipart(
    server: &TestServer,
    path: &str,
    token: &str,
    parts: &[Part<'_>],
) -> Fetched {
    let (content_type, body) = multipart(parts);
    send(
        server,
        Method::POST,
        path,
        &[("Authorization", token), ("Content-Type", &content_type)],
        body,
    )
    .await
}

/// Every file the filesystem backend holds.
fn stored_files(server: &TestServer) -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(&server.data_dir().join("files"), &mut found);
    found
}

/// An account with a guild of its own and the guild's text channel.
pub(crate) async fn owner_with_channel(
    server: &impl Server,
    name: &str,
) -> (Account, String, String) {
    let owner = account(server, name).await;
    let guild = post(
        server,
        "/api/v9/guilds",
        Some(&owner.token),
        json!({ "name": "Files" }),
    )
    .await;
    assert_eq!(guild.status, 201, "{:?}", guild.body);
    let guild_id = guild.body["id"].as_str().unwrap().to_string();
    let channel = text_channel(server, &owner.token, &guild_id).await;
    (owner, guild_id, channel)
}

fn decode(bytes: &[u8]) -> DynamicImage {
    image::load_from_memory(bytes).unwrap()
}

#[actix_web::test]
async fn multipart_attachments_download_byte_identical() {
    let server = TestServer::start().await;
    let (owner, _, channel) = owner_with_channel(&server, "mona").await;
    let text = noise(300_000);
    let picture = png(40, 30);
    let payload = json!({ "content": "two files", "attachments": [
        { "id": 1, "filename": "renamed.png", "description": "a gradient" },
    ]})
    .to_string();
    let sent = send_multipart(
        &server,
        &format!("/api/v9/channels/{channel}/messages"),
        &owner.token,
        &[
            ("payload_json", None, payload.as_bytes()),
            ("files[0]", Some("notes.bin"), &text),
            ("files[1]", Some("picture.png"), &picture),
        ],
    )
    .await;
    assert_eq!(sent.status, 200, "{}", String::from_utf8_lossy(&sent.bytes));
    let message = sent.json();
    assert_eq!(message["content"], "two files");
    let attachments = message["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 2);
    let (notes, image) = (&attachments[0], &attachments[1]);
    assert_eq!(notes["filename"], "notes.bin");
    assert_eq!(notes["size"], 300_000);
    assert_eq!(notes["content_type"], "application/octet-stream");
    assert!(notes.get("width").is_none());
    assert_eq!(image["filename"], "renamed.png");
    assert_eq!(image["description"], "a gradient");
    assert_eq!(
        (image["width"].as_u64(), image["height"].as_u64()),
        (Some(40), Some(30))
    );
    assert_eq!(image["content_type"], "image/png");
    let url = notes["url"].as_str().unwrap();
    assert_eq!(
        url.split('?').next().unwrap(),
        server.url(&format!(
            "/attachments/{channel}/{}/notes.bin",
            notes["id"].as_str().unwrap()
        ))
    );
    assert_eq!(notes["proxy_url"], notes["url"]);

    let downloaded = fetch(&server, url, &[]).await;
    assert_eq!(downloaded.status, 200);
    assert!(
        downloaded.bytes == text,
        "the download differs from the upload"
    );
    assert_eq!(
        downloaded.header("content-type"),
        Some("application/octet-stream")
    );
    let etag = downloaded.header("etag").unwrap().to_string();
    let again = fetch(&server, url, &[("If-None-Match", &etag)]).await;
    assert_eq!(again.status, 304);
    let part = fetch(&server, url, &[("Range", "bytes=1000-1999")]).await;
    assert_eq!(part.status, 206);
    assert_eq!(part.bytes, text[1000..2000]);
    assert_eq!(part.header("content-range"), Some("bytes 1000-1999/300000"));
    let beyond = fetch(&server, url, &[("Range", "bytes=400000-")]).await;
    assert_eq!(beyond.status, 416);
    let image_download = fetch(&server, image["url"].as_str().unwrap(), &[]).await;
    assert_eq!(image_download.bytes, picture);
    assert_eq!(image_download.header("content-type"), Some("image/png"));

    // History shows the same attachments.
    let history = get(
        &server,
        &format!("/api/v9/channels/{channel}/messages"),
        Some(&owner.token),
    )
    .await;
    assert_eq!(history.body[0]["attachments"], message["attachments"]);

    // The older form: `content` and `file` fields.
    let legacy = send_multipart(
        &server,
        &format!("/api/v9/channels/{channel}/messages"),
        &owner.token,
        &[
            ("content", None, b"old style"),
            ("file", Some("hello.txt"), b"hello"),
        ],
    )
    .await;
    assert_eq!(
        legacy.status,
        200,
        "{}",
        String::from_utf8_lossy(&legacy.bytes)
    );
    let legacy = legacy.json();
    assert_eq!(legacy["content"], "old style");
    assert_eq!(
        legacy["attachments"][0]["content_type"],
        "text/plain; charset=utf-8"
    );
    let hello = fetch(
        &server,
        legacy["attachments"][0]["url"].as_str().unwrap(),
        &[],
    )
    .await;
    assert_eq!(hello.bytes, b"hello");

    // A file alone is a message; HEAD answers without a body.
    let head = send(&server, Method::HEAD, url, &[], Vec::new()).await;
    assert_eq!(head.status, 200);
    assert!(head.bytes.is_empty());
}

#[actix_web::test]
async fn the_pre_upload_flow_gives_the_same_bytes() {
    let server = TestServer::start().await;
    let (owner, _, channel) = owner_with_channel(&server, "nils").await;
    let bytes = noise(200_000);
    let asked = post(
        &server,
        &format!("/api/v9/channels/{channel}/attachments"),
        Some(&owner.token),
        json!({ "files": [
            { "id": "7", "filename": "big file.bin", "file_size": 200_000 },
            { "id": "8", "filename": "unused.txt", "file_size": 5 },
        ]}),
    )
    .await;
    assert_eq!(asked.status, 200, "{:?}", asked.body);
    let slots = asked.body["attachments"].as_array().unwrap();
    assert_eq!(slots[0]["id"], "7");
    let upload_url = slots[0]["upload_url"].as_str().unwrap();
    let upload_filename = slots[0]["upload_filename"].as_str().unwrap();
    assert!(
        upload_filename.ends_with("/big_file.bin"),
        "{upload_filename}"
    );
    let put = send(&server, Method::PUT, upload_url, &[], bytes.clone()).await;
    assert_eq!(put.status, 200);
    let twice = send(&server, Method::PUT, upload_url, &[], b"other".to_vec()).await;
    assert_eq!(twice.status, 409, "an upload takes one file");

    let sent = post(
        &server,
        &format!("/api/v9/channels/{channel}/messages"),
        Some(&owner.token),
        json!({ "content": "", "attachments": [
            { "id": "0", "filename": "big file.bin", "uploaded_filename": upload_filename },
        ]}),
    )
    .await;
    assert_eq!(sent.status, 200, "{:?}", sent.body);
    let attachment = &sent.body["attachments"][0];
    assert_eq!(attachment["size"], 200_000);
    assert_eq!(attachment["filename"], "big_file.bin");
    let downloaded = fetch(&server, attachment["url"].as_str().unwrap(), &[]).await;
    assert_eq!(downloaded.status, 200);
    assert!(
        downloaded.bytes == bytes,
        "the download differs from the upload"
    );

    // An upload makes one attachment only.
    let reused = post(
        &server,
        &format!("/api/v9/channels/{channel}/messages"),
        Some(&owner.token),
        json!({ "attachments": [{ "id": "0", "uploaded_filename": upload_filename }] }),
    )
    .await;
    assert_form_error(
        &reused,
        "attachments.0.uploaded_filename",
        "ATTACHMENT_NOT_FOUND",
    );

    // The second upload is deleted unused, with its file.
    let unused = slots[1]["upload_filename"].as_str().unwrap();
    let put = send(
        &server,
        Method::PUT,
        slots[1]["upload_url"].as_str().unwrap(),
        &[],
        b"12345".to_vec(),
    )
    .await;
    assert_eq!(put.status, 200);
    let files_before = stored_files(&server).len();
    let deleted = request(
        &server,
        Method::DELETE,
        &format!("/api/v9/attachments/{unused}"),
        Some(&owner.token),
        None,
    )
    .await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    assert_eq!(stored_files(&server).len(), files_before - 1);
    let after = post(
        &server,
        &format!("/api/v9/channels/{channel}/messages"),
        Some(&owner.token),
        json!({ "attachments": [{ "id": "0", "uploaded_filename": unused }] }),
    )
    .await;
    assert_form_error(
        &after,
        "attachments.0.uploaded_filename",
        "ATTACHMENT_NOT_FOUND",
    );
}

#[actix_web::test]
async fn avatars_are_resized_and_converted() {
    let server = TestServer::start().await;
    let me = account(&server, "olga").await;
    let mut gateway = Gateway::connect(&server, "v=9&encoding=json").await;
    gateway.identify(&me.token).await;
    let changed = patch(
        &server,
        "/api/v9/users/@me",
        &me.token,
        json!({ "avatar": data_url("image/png", &png(256, 256)) }),
    )
    .await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    let hash = changed.body["avatar"].as_str().unwrap().to_string();
    assert_eq!(hash.len(), 32);
    let update = gateway.dispatch("USER_UPDATE").await;
    assert_eq!(update["d"]["avatar"], hash);

    let base = format!("/avatars/{}/{hash}", me.id);
    let small = fetch(&server, &format!("{base}.png?size=64"), &[]).await;
    assert_eq!(small.status, 200);
    assert_eq!(small.header("content-type"), Some("image/png"));
    let image = decode(&small.bytes);
    assert_eq!((image.width(), image.height()), (64, 64));
    let webp = fetch(&server, &format!("{base}.webp?size=128"), &[]).await;
    assert_eq!(webp.header("content-type"), Some("image/webp"));
    assert_eq!(&webp.bytes[..4], b"RIFF");
    assert_eq!(&webp.bytes[8..12], b"WEBP");
    assert_eq!(image::guess_format(&webp.bytes).unwrap(), ImageFormat::WebP);
    assert_eq!(decode(&webp.bytes).width(), 128);
    let jpeg = fetch(&server, &format!("{base}.jpg"), &[]).await;
    assert_eq!(image::guess_format(&jpeg.bytes).unwrap(), ImageFormat::Jpeg);
    assert_eq!(decode(&jpeg.bytes).width(), 256);

    // Cached: the same bytes again, and 304 for a client that has them.
    let cached = fetch(&server, &format!("{base}.png?size=64"), &[]).await;
    assert_eq!(cached.bytes, small.bytes);
    let etag = cached.header("etag").unwrap().to_string();
    assert!(cached.header("cache-control").unwrap().contains("max-age"));
    let not_modified = fetch(
        &server,
        &format!("{base}.png?size=64"),
        &[("If-None-Match", &etag)],
    )
    .await;
    assert_eq!(not_modified.status, 304);
    assert!(not_modified.bytes.is_empty());

    for bad in ["?size=8", "?size=8192", "?size=x"] {
        assert_eq!(
            fetch(&server, &format!("{base}.png{bad}"), &[])
                .await
                .status,
            400,
            "{bad}"
        );
    }
    assert_eq!(
        fetch(&server, &format!("{base}.bmp"), &[]).await.status,
        400
    );
    assert_eq!(
        fetch(
            &server,
            &format!("/avatars/{}/{}.png", me.id, "0".repeat(32)),
            &[]
        )
        .await
        .status,
        404
    );

    // An animated avatar: `a_` hash, animated as .gif, still as .png.
    let animated = patch(
        &server,
        "/api/v9/users/@me",
        &me.token,
        json!({ "avatar": data_url("image/gif", &animated_gif(64)) }),
    )
    .await;
    let animated_hash = animated.body["avatar"].as_str().unwrap().to_string();
    assert!(animated_hash.starts_with("a_"), "{animated_hash}");
    let gif = fetch(
        &server,
        &format!("/avatars/{}/{animated_hash}.gif?size=32", me.id),
        &[],
    )
    .await;
    assert_eq!(gif.header("content-type"), Some("image/gif"));
    {
        use image::AnimationDecoder;
        let frames = image::codecs::gif::GifDecoder::new(Cursor::new(&gif.bytes))
            .unwrap()
            .into_frames()
            .collect_frames()
            .unwrap();
        assert_eq!(frames.len(), 3, "the GIF stays animated");
        assert_eq!(frames[0].buffer().width(), 32);
    }
    // The replaced avatar's file is gone.
    assert_eq!(
        fetch(&server, &format!("{base}.png"), &[]).await.status,
        404
    );

    // Not an image, and the banner.
    let broken = patch(
        &server,
        "/api/v9/users/@me",
        &me.token,
        json!({ "avatar": "data:image/png;base64,AAAA" }),
    )
    .await;
    assert_form_error(&broken, "avatar", "IMAGE_INVALID");
    let banner = patch(
        &server,
        "/api/v9/users/@me",
        &me.token,
        json!({ "banner": data_url("image/png", &png(600, 240)) }),
    )
    .await;
    let banner_hash = banner.body["banner"].as_str().unwrap();
    let served = fetch(
        &server,
        &format!("/banners/{}/{banner_hash}.png?size=256", me.id),
        &[],
    )
    .await;
    assert_eq!(
        (
            decode(&served.bytes).width(),
            decode(&served.bytes).height()
        ),
        (256, 102)
    );
    let cleared = patch(
        &server,
        "/api/v9/users/@me",
        &me.token,
        json!({ "avatar": null }),
    )
    .await;
    assert_eq!(cleared.body["avatar"], Value::Null);
    assert_eq!(
        fetch(
            &server,
            &format!("/avatars/{}/{animated_hash}.gif", me.id),
            &[]
        )
        .await
        .status,
        404
    );
}

#[actix_web::test]
async fn default_avatars_ship_with_the_server() {
    let server = TestServer::start().await;
    for n in 0..6 {
        let avatar = fetch(&server, &format!("/embed/avatars/{n}.png"), &[]).await;
        assert_eq!(avatar.status, 200);
        assert_eq!(avatar.header("content-type"), Some("image/png"));
        assert_eq!(decode(&avatar.bytes).width(), 256);
    }
    assert_eq!(
        fetch(&server, "/embed/avatars/6.png", &[]).await.status,
        404
    );
}

#[actix_web::test]
async fn limits_are_refused_and_nothing_is_stored() {
    let server = TestServer::with(&[
        ("limits.message_max_attachment_size", "10000"),
        ("limits.message_max_attachments", "2"),
        ("cdn.max_emoji_bytes", "2000"),
    ])
    .await;
    let (owner, guild_id, channel) = owner_with_channel(&server, "pia").await;
    let path = format!("/api/v9/channels/{channel}/messages");
    let big = noise(10_001);
    let too_large = send_multipart(
        &server,
        &path,
        &owner.token,
        &[
            ("payload_json", None, br#"{"content":"x"}"#),
            ("files[0]", Some("small.txt"), b"fine"),
            ("files[1]", Some("big.bin"), &big),
        ],
    )
    .await;
    assert_eq!(too_large.status, 413);
    assert_eq!(too_large.json()["code"], 40005);
    let too_many = send_multipart(
        &server,
        &path,
        &owner.token,
        &[
            ("files[0]", Some("a.txt"), b"a"),
            ("files[1]", Some("b.txt"), b"b"),
            ("files[2]", Some("c.txt"), b"c"),
        ],
    )
    .await;
    assert_eq!(too_many.status, 400);
    assert_eq!(
        too_many.json()["errors"]["files"]["_errors"][0]["code"],
        "BASE_TYPE_MAX_LENGTH"
    );
    let declared_too_large = post(
        &server,
        &format!("/api/v9/channels/{channel}/attachments"),
        Some(&owner.token),
        json!({ "files": [{ "filename": "a", "file_size": 10_001 }] }),
    )
    .await;
    assert_eq!(declared_too_large.body["code"], 40005);
    // A pre-upload larger than it may be is refused while it streams in.
    let slot = post(
        &server,
        &format!("/api/v9/channels/{channel}/attachments"),
        Some(&owner.token),
        json!({ "files": [{ "filename": "a", "file_size": 10 }] }),
    )
    .await;
    let put = send(
        &server,
        Method::PUT,
        slot.body["attachments"][0]["upload_url"].as_str().unwrap(),
        &[],
        big.clone(),
    )
    .await;
    assert_eq!(put.status, 413);
    let emoji = post(
        &server,
        &format!("/api/v9/guilds/{guild_id}/emojis"),
        Some(&owner.token),
        json!({ "name": "huge", "image": data_url("image/png", &noise(3000)) }),
    )
    .await;
    assert_form_error(&emoji, "image", "BINARY_TYPE_MAX_SIZE");

    assert_eq!(server.count("messages").await, 0, "no message was stored");
    assert_eq!(server.count("emojis").await, 0);
    assert!(
        stored_files(&server).is_empty(),
        "{:?}",
        stored_files(&server)
    );
}

#[actix_web::test]
async fn path_traversal_is_refused() {
    let server = TestServer::start().await;
    let (owner, _, channel) = owner_with_channel(&server, "quin").await;
    std::fs::write(server.data_dir().join("secret.txt"), b"secret").unwrap();
    let sent = send_multipart(
        &server,
        &format!("/api/v9/channels/{channel}/messages"),
        &owner.token,
        &[("files[0]", Some("../../secret.txt"), b"mine")],
    )
    .await;
    assert_eq!(sent.status, 200);
    let attachment = &sent.json()["attachments"][0];
    assert_eq!(attachment["filename"], "secret.txt");
    let id = attachment["id"].as_str().unwrap();
    let secret = std::fs::read(server.data_dir().join("secret.txt")).unwrap();
    assert_eq!(
        secret, b"secret",
        "the upload overwrote nothing outside its place"
    );
    for path in [
        format!("/attachments/{channel}/{id}/..%2F..%2F..%2Fsecret.txt"),
        format!("/attachments/{channel}/{id}/%2e%2e%2f%2e%2e%2fsecret.txt"),
        format!("/attachments/{channel}/{id}/%2E%2E"),
        format!("/attachments/{channel}/{id}/..%5C..%5Csecret.txt"),
        format!("/attachments/{channel}/..%2F..%2F/secret.txt"),
        "/attachments/../../secret.txt".to_string(),
        "/avatars/1/..%2F..%2Fsecret.txt".to_string(),
        "/avatars/1/%2e%2e%2f%2e%2e%2fsecret.png".to_string(),
        "/icons/..%2F..%2F/x.png".to_string(),
        "/emojis/..%2F..%2Fsecret.txt".to_string(),
        "/uploads/..%2F..%2Fsecret.txt".to_string(),
    ] {
        let response = fetch(&server, &path, &[]).await;
        assert!(
            matches!(response.status.as_u16(), 400 | 404),
            "{path}: {}",
            response.status
        );
        assert_ne!(response.bytes, b"secret", "{path}");
    }
    let put = send(
        &server,
        Method::PUT,
        "/uploads/..%2F..%2Fsecret.txt",
        &[],
        b"x".to_vec(),
    )
    .await;
    assert_eq!(put.status, 404);
    let delete = request(
        &server,
        Method::DELETE,
        "/api/v9/attachments/..%2F..%2Fsecret.txt/x",
        Some(&owner.token),
        None,
    )
    .await;
    assert_eq!(delete.status, 404);
    assert_eq!(
        std::fs::read(server.data_dir().join("secret.txt")).unwrap(),
        b"secret"
    );
}

fn query<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    url.split(['?', '&'])
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

#[actix_web::test]
async fn signed_urls_expire_and_can_be_refreshed() {
    let server =
        TestServer::with(&[("cdn.sign_urls", "true"), ("cdn.url_lifetime_secs", "2")]).await;
    let (owner, _, channel) = owner_with_channel(&server, "rosa").await;
    let sent = send_multipart(
        &server,
        &format!("/api/v9/channels/{channel}/messages"),
        &owner.token,
        &[("files[0]", Some("signed.txt"), b"signed bytes")],
    )
    .await;
    let url = sent.json()["attachments"][0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    for name in ["ex", "is", "hm"] {
        assert!(query(&url, name).is_some(), "{url} lacks {name}");
    }
    assert_eq!(fetch(&server, &url, &[]).await.bytes, b"signed bytes");
    let bare = url.split('?').next().unwrap().to_string();
    assert_eq!(fetch(&server, &bare, &[]).await.status, 404, "unsigned");
    let hm = query(&url, "hm").unwrap();
    let tampered = url.replace(hm, &"0".repeat(hm.len()));
    assert_eq!(
        fetch(&server, &tampered, &[]).await.status,
        404,
        "bad signature"
    );
    let other_file = url.replace("signed.txt", "other.txt");
    assert_eq!(
        fetch(&server, &other_file, &[]).await.status,
        404,
        "signature of another path"
    );

    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(fetch(&server, &url, &[]).await.status, 404, "expired");
    let refreshed = post(
        &server,
        "/api/v9/attachments/refresh-urls",
        Some(&owner.token),
        json!({ "attachment_urls": [url] }),
    )
    .await;
    assert_eq!(refreshed.status, 200, "{:?}", refreshed.body);
    assert_eq!(refreshed.body["refreshed_urls"][0]["original"], url);
    let fresh = refreshed.body["refreshed_urls"][0]["refreshed"]
        .as_str()
        .unwrap();
    assert_ne!(fresh, url);
    assert_eq!(fetch(&server, fresh, &[]).await.bytes, b"signed bytes");
    // History hands out freshly signed URLs too.
    let history = get(
        &server,
        &format!("/api/v9/channels/{channel}/messages"),
        Some(&owner.token),
    )
    .await;
    let listed = history.body[0]["attachments"][0]["url"].as_str().unwrap();
    assert_eq!(fetch(&server, listed, &[]).await.status, 200);
}

#[actix_web::test]
async fn deleting_removes_the_files() {
    let server = TestServer::start().await;
    let (owner, guild_id, channel) = owner_with_channel(&server, "sven").await;
    let path = format!("/api/v9/channels/{channel}/messages");
    let mut urls = Vec::new();
    let mut ids = Vec::new();
    for name in ["one.txt", "two.txt", "three.txt"] {
        let sent = send_multipart(
            &server,
            &path,
            &owner.token,
            &[("files[0]", Some(name), name.as_bytes())],
        )
        .await;
        let message = sent.json();
        urls.push(
            message["attachments"][0]["url"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        ids.push(message["id"].as_str().unwrap().to_string());
    }
    assert_eq!(stored_files(&server).len(), 3);
    let deleted = request(
        &server,
        Method::DELETE,
        &format!("{path}/{}", ids[0]),
        Some(&owner.token),
        None,
    )
    .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(fetch(&server, &urls[0], &[]).await.status, 404);
    assert_eq!(fetch(&server, &urls[1], &[]).await.status, 200);
    let bulk = post(
        &server,
        &format!("{path}/bulk-delete"),
        Some(&owner.token),
        json!({ "messages": [ids[1], ids[2]] }),
    )
    .await;
    assert_eq!(bulk.status, 204, "{:?}", bulk.body);
    assert_eq!(fetch(&server, &urls[2], &[]).await.status, 404);
    assert!(
        stored_files(&server).is_empty(),
        "{:?}",
        stored_files(&server)
    );

    let emoji = post(
        &server,
        &format!("/api/v9/guilds/{guild_id}/emojis"),
        Some(&owner.token),
        json!({ "name": "gone", "image": data_url("image/png", &png(64, 64)) }),
    )
    .await;
    let emoji_id = emoji.body["id"].as_str().unwrap();
    assert_eq!(
        fetch(&server, &format!("/emojis/{emoji_id}.webp?size=32"), &[])
            .await
            .status,
        200
    );
    let deleted = request(
        &server,
        Method::DELETE,
        &format!("/api/v9/guilds/{guild_id}/emojis/{emoji_id}"),
        Some(&owner.token),
        None,
    )
    .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(
        fetch(&server, &format!("/emojis/{emoji_id}.webp?size=32"), &[])
            .await
            .status,
        404,
        "no cached variant outlives it"
    );
    assert_eq!(
        fetch(&server, &format!("/emojis/{emoji_id}.png"), &[])
            .await
            .status,
        404
    );
    assert!(
        stored_files(&server).is_empty(),
        "{:?}",
        stored_files(&server)
    );
}

#[actix_web::test]
async fn guild_images_emojis_and_stickers() {
    let server = TestServer::start().await;
    let owner = account(&server, "tova").await;
    let mut gateway = Gateway::connect(&server, "v=9&encoding=json").await;
    gateway.identify(&owner.token).await;
    let guild = post(
        &server,
        "/api/v9/guilds",
        Some(&owner.token),
        json!({ "name": "Pictures", "icon": data_url("image/png", &png(128, 128)) }),
    )
    .await;
    assert_eq!(guild.status, 201, "{:?}", guild.body);
    let guild_id = guild.body["id"].as_str().unwrap().to_string();
    let icon = guild.body["icon"].as_str().unwrap();
    let served = fetch(
        &server,
        &format!("/icons/{guild_id}/{icon}.webp?size=32"),
        &[],
    )
    .await;
    assert_eq!(decode(&served.bytes).width(), 32);
    let modified = patch(
        &server,
        &format!("/api/v9/guilds/{guild_id}"),
        &owner.token,
        json!({ "splash": data_url("image/png", &png(64, 36)), "banner": data_url("image/png", &png(96, 32)) }),
    )
    .await;
    assert_eq!(modified.status, 200, "{:?}", modified.body);
    let splash = modified.body["splash"].as_str().unwrap();
    assert_eq!(
        fetch(&server, &format!("/splashes/{guild_id}/{splash}.png"), &[])
            .await
            .status,
        200
    );
    let banner = modified.body["banner"].as_str().unwrap();
    assert_eq!(
        fetch(&server, &format!("/banners/{guild_id}/{banner}.jpg"), &[])
            .await
            .status,
        200
    );

    let role = post(
        &server,
        &format!("/api/v9/guilds/{guild_id}/roles"),
        Some(&owner.token),
        json!({ "name": "pictured", "icon": data_url("image/png", &png(64, 64)) }),
    )
    .await;
    assert_eq!(role.status, 200, "{:?}", role.body);
    let role_id = role.body["id"].as_str().unwrap();
    let role_icon = role.body["icon"].as_str().unwrap();
    assert_eq!(
        fetch(
            &server,
            &format!("/role-icons/{role_id}/{role_icon}.png?size=16"),
            &[]
        )
        .await
        .status,
        200
    );

    let emoji = post(
        &server,
        &format!("/api/v9/guilds/{guild_id}/emojis"),
        Some(&owner.token),
        json!({ "name": "dance", "image": data_url("image/gif", &animated_gif(48)) }),
    )
    .await;
    assert_eq!(emoji.status, 201, "{:?}", emoji.body);
    assert_eq!(emoji.body["animated"], true);
    let emoji_id = emoji.body["id"].as_str().unwrap().to_string();
    let update = gateway.dispatch("GUILD_EMOJIS_UPDATE").await;
    assert_eq!(update["d"]["guild_id"], guild_id);
    assert_eq!(update["d"]["emojis"][0]["id"], emoji_id);
    let gif = fetch(&server, &format!("/emojis/{emoji_id}.gif"), &[]).await;
    assert_eq!(gif.header("content-type"), Some("image/gif"));
    let still = fetch(&server, &format!("/emojis/{emoji_id}.png?size=16"), &[]).await;
    assert_eq!(decode(&still.bytes).width(), 16);
    let renamed = patch(
        &server,
        &format!("/api/v9/guilds/{guild_id}/emojis/{emoji_id}"),
        &owner.token,
        json!({ "name": "boogie" }),
    )
    .await;
    assert_eq!(renamed.body["name"], "boogie");
    let listed = get(
        &server,
        &format!("/api/v9/guilds/{guild_id}/emojis"),
        Some(&owner.token),
    )
    .await;
    assert_eq!(listed.body[0]["name"], "boogie");
    let bad_name = post(
        &server,
        &format!("/api/v9/guilds/{guild_id}/emojis"),
        Some(&owner.token),
        json!({ "name": "no spaces", "image": data_url("image/png", &png(8, 8)) }),
    )
    .await;
    assert_form_error(&bad_name, "name", "BASE_TYPE_BAD_LENGTH");

    let sticker_png = png(160, 160);
    let sticker = send_multipart(
        &server,
        &format!("/api/v9/guilds/{guild_id}/stickers"),
        &owner.token,
        &[
            ("name", None, b"wave"),
            ("tags", None, b"wave"),
            ("description", None, b"a wave"),
            ("file", Some("wave.png"), &sticker_png),
        ],
    )
    .await;
    assert_eq!(
        sticker.status,
        200,
        "{}",
        String::from_utf8_lossy(&sticker.bytes)
    );
    let sticker = sticker.json();
    assert_eq!(sticker["format_type"], 1);
    let sticker_id = sticker["id"].as_str().unwrap();
    let update = gateway.dispatch("GUILD_STICKERS_UPDATE").await;
    assert_eq!(update["d"]["stickers"][0]["id"], sticker_id);
    let original = fetch(&server, &format!("/stickers/{sticker_id}.png"), &[]).await;
    assert_eq!(original.bytes, sticker_png);
    let small = fetch(
        &server,
        &format!("/stickers/{sticker_id}.webp?size=64"),
        &[],
    )
    .await;
    assert_eq!(decode(&small.bytes).width(), 64);
    let not_image = send_multipart(
        &server,
        &format!("/api/v9/guilds/{guild_id}/stickers"),
        &owner.token,
        &[
            ("name", None, b"bad"),
            ("tags", None, b"x"),
            ("file", Some("x.png"), b"not a png"),
        ],
    )
    .await;
    assert_eq!(not_image.status, 400);
    let removed = request(
        &server,
        Method::DELETE,
        &format!("/api/v9/guilds/{guild_id}/stickers/{sticker_id}"),
        Some(&owner.token),
        None,
    )
    .await;
    assert_eq!(removed.status, 204);
    assert_eq!(
        fetch(&server, &format!("/stickers/{sticker_id}.png"), &[])
            .await
            .status,
        404
    );
}

/// A moto S3 server on a free port, stopped when dropped.
struct S3Server {
    child: Child,
    endpoint: String,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl S3Server {
    /// A request to the S3 server itself, path-style (`/bucket/key`). It carries an
    /// `Authorization` header: like S3, moto answers an anonymous read of a private object with
    /// 403 and an empty body, and it does not check signatures.
    async fn get(&self, path: &str) -> Fetched {
        let mut response = client()
            .get(format!("{}/{path}", self.endpoint))
            .insert_header(("Authorization", "AWS test:unchecked"))
            .send()
            .await
            .unwrap();
        let bytes = response.body().limit(64 << 20).await.unwrap().to_vec();
        Fetched {
            status: response.status(),
            headers: response.headers().clone(),
            bytes,
        }
    }
}

/// moto (an S3-compatible server in Python) from PyPI, installed once into a virtualenv under
/// the target directory, on a free port; `Err` says why it could not be had.
async fn start_s3() -> Result<S3Server, String> {
    let python = python::venv("moto-venv", &["moto[server]==5.1.*"], "import moto.server")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let child = Command::new(python)
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut server = S3Server {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..300 {
        if let Ok(response) = client().get(format!("{}/", server.endpoint)).send().await {
            if response.status().is_success() {
                return Ok(server);
            }
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(format!("moto.server exited: {status}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("moto.server did not answer in 30 s".into())
}

#[actix_web::test]
async fn the_s3_backend_keeps_and_removes_files() {
    // No skip: PyPI is reachable wherever the tests run, so a missing S3 server is breakage.
    let s3 = start_s3()
        .await
        .unwrap_or_else(|why| panic!("no S3 server (moto, from PyPI): {why}"));
    // moto takes an unsigned PUT as "create bucket".
    let created = client()
        .put(format!("{}/spacebar", s3.endpoint))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{}", created.status());
    let server = TestServer::with(&[
        ("storage.backend", "s3"),
        ("storage.s3_bucket", "spacebar"),
        ("storage.s3_endpoint", s3.endpoint.as_str()),
        ("storage.s3_access_key_id", "test"),
        ("storage.s3_secret_access_key", "test"),
        ("storage.s3_prefix", "cdn"),
    ])
    .await;
    let (owner, _, channel) = owner_with_channel(&server, "ulla").await;
    let bytes = noise(150_000);
    let sent = send_multipart(
        &server,
        &format!("/api/v9/channels/{channel}/messages"),
        &owner.token,
        &[("files[0]", Some("in the bucket.bin"), &bytes)],
    )
    .await;
    assert_eq!(sent.status, 200, "{}", String::from_utf8_lossy(&sent.bytes));
    let message = sent.json();
    let attachment = &message["attachments"][0];
    let url = attachment["url"].as_str().unwrap();
    let downloaded = fetch(&server, url, &[]).await;
    assert!(
        downloaded.bytes == bytes,
        "the download differs from the upload"
    );
    let part = fetch(&server, url, &[("Range", "bytes=-100")]).await;
    assert_eq!(part.bytes, bytes[bytes.len() - 100..]);
    assert!(
        stored_files(&server).is_empty(),
        "nothing on the local disk"
    );
    let key = format!(
        "spacebar/cdn/attachments/{channel}/{}/in_the_bucket.bin",
        attachment["id"].as_str().unwrap()
    );
    let in_bucket = s3.get(&key).await;
    assert_eq!(
        in_bucket.status, 200,
        "the object is in the bucket under its key"
    );
    assert!(
        in_bucket.bytes == bytes,
        "the bucket holds the file as sent"
    );

    // Pre-uploads through S3's streaming writer: a small file is one plain PUT, one past a
    // part's 5 MiB a multipart upload. The message moves them (a rename in the bucket).
    let big = noise(6 << 20);
    let files: [(&str, &[u8]); 2] = [("small.bin", b"abc"), ("big.bin", &big)];
    let slots = post(
        &server,
        &format!("/api/v9/channels/{channel}/attachments"),
        Some(&owner.token),
        json!({ "files": files.iter().map(|(name, bytes)| json!({ "filename": name, "file_size": bytes.len() })).collect::<Vec<_>>() }),
    )
    .await;
    assert_eq!(slots.status, 200, "{:?}", slots.body);
    for (slot, (_, bytes)) in slots.body["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .zip(files)
    {
        let url = slot["upload_url"].as_str().unwrap();
        let put = send(&server, Method::PUT, url, &[], bytes.to_vec()).await;
        assert_eq!(put.status, 200, "{}", String::from_utf8_lossy(&put.bytes));
        let token = &url[url.rfind('/').unwrap() + 1..];
        let waiting = s3.get(&format!("spacebar/cdn/uploads/{token}")).await;
        assert!(waiting.status == 200 && waiting.bytes == bytes);
        // S3 gives a multipart object an ETag ending in "-{parts}".
        let etag = waiting.header("ETag").unwrap_or_default();
        assert_eq!(
            etag.contains('-'),
            bytes.len() > 5 << 20,
            "one PUT below 5 MiB, a multipart upload above (ETag {etag})"
        );
    }
    let uploaded: Vec<Value> = (0..files.len())
        .map(|i| json!({ "id": i.to_string(), "uploaded_filename": slots.body["attachments"][i]["upload_filename"] }))
        .collect();
    let with_upload = post(
        &server,
        &format!("/api/v9/channels/{channel}/messages"),
        Some(&owner.token),
        json!({ "attachments": uploaded }),
    )
    .await;
    assert_eq!(with_upload.status, 200, "{:?}", with_upload.body);
    for (attachment, (name, bytes)) in with_upload.body["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .zip(files)
    {
        assert_eq!(attachment["filename"], name);
        assert_eq!(attachment["size"], bytes.len());
        let served = fetch(&server, attachment["url"].as_str().unwrap(), &[]).await;
        assert!(served.bytes == bytes, "{name} is served as uploaded");
        let kept = s3
            .get(&format!(
                "spacebar/cdn/attachments/{channel}/{}/{name}",
                attachment["id"].as_str().unwrap()
            ))
            .await;
        assert!(
            kept.status == 200 && kept.bytes == bytes,
            "{name} is in the bucket"
        );
    }
    let waiting = s3.get("spacebar?list-type=2&prefix=cdn/uploads/").await;
    assert_eq!(waiting.status, 200);
    assert!(
        !String::from_utf8_lossy(&waiting.bytes).contains("<Key>"),
        "no pre-upload is left under uploads/: {}",
        String::from_utf8_lossy(&waiting.bytes)
    );
    let avatar = patch(
        &server,
        "/api/v9/users/@me",
        &owner.token,
        json!({ "avatar": data_url("image/png", &png(128, 128)) }),
    )
    .await;
    let hash = avatar.body["avatar"].as_str().unwrap();
    let small = fetch(
        &server,
        &format!("/avatars/{}/{hash}.png?size=32", owner.id),
        &[],
    )
    .await;
    assert_eq!(decode(&small.bytes).width(), 32);

    let deleted = request(
        &server,
        Method::DELETE,
        &format!(
            "/api/v9/channels/{channel}/messages/{}",
            message["id"].as_str().unwrap()
        ),
        Some(&owner.token),
        None,
    )
    .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(fetch(&server, url, &[]).await.status, 404);
    assert_eq!(s3.get(&key).await.status, 404, "the object left the bucket");
}

#[actix_web::test]
async fn attachment_urls_use_the_public_url_whatever_the_host() {
    let server = TestServer::with(&[("http.public_url", "https://chat.example.org/")]).await;
    let (owner, _, channel) = owner_with_channel(&server, "vera").await;
    let (content_type, body) = multipart(&[("files[0]", Some("a.txt"), b"a")]);
    let sent = send(
        &server,
        Method::POST,
        &format!("/api/v9/channels/{channel}/messages"),
        &[
            ("Authorization", owner.token.as_str()),
            ("Content-Type", content_type.as_str()),
            ("Host", "evil.example.net"),
        ],
        body,
    )
    .await;
    assert_eq!(sent.status, 200);
    let url = sent.json()["attachments"][0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        url.starts_with("https://chat.example.org/attachments/"),
        "{url}"
    );
    let history = get(
        &server,
        &format!("/api/v9/channels/{channel}/messages"),
        Some(&owner.token),
    )
    .await;
    assert_eq!(history.body[0]["attachments"][0]["url"], url.as_str());
    let path = url.strip_prefix("https://chat.example.org").unwrap();
    assert_eq!(fetch(&server, path, &[]).await.bytes, b"a");
}

#[actix_web::test]
async fn any_size_a_client_asks_for_is_served() {
    let server = TestServer::start().await;
    let (owner, guild_id, _) = owner_with_channel(&server, "fermi").await;
    let avatar = patch(
        &server,
        "/api/v9/users/@me",
        &owner.token,
        json!({ "avatar": data_url("image/png", &png(512, 512)) }),
    )
    .await;
    let hash = avatar.body["avatar"].as_str().unwrap();
    let icon = patch(
        &server,
        &format!("/api/v9/guilds/{guild_id}"),
        &owner.token,
        json!({ "icon": data_url("image/png", &png(512, 256)) }),
    )
    .await;
    assert_eq!(icon.status, 200, "{:?}", icon.body);
    let icon_hash = icon.body["icon"].as_str().unwrap();
    // Fermi's sizes, and some no ladder has: each answered with an image of about that size.
    for size in [96u32, 48, 160, 300, 20, 100, 97, 1000] {
        for (path, aspect) in [
            (format!("/avatars/{}/{hash}.webp?size={size}", owner.id), 1),
            (format!("/icons/{guild_id}/{icon_hash}.png?size={size}"), 2),
        ] {
            let served = fetch(&server, &path, &[]).await;
            assert_eq!(served.status, 200, "{path}: {:?}", served.json());
            let image = decode(&served.bytes);
            let expected = size.min(512);
            assert!(
                image.width() >= expected && image.width() <= expected + expected / 4,
                "{path}: {}",
                image.width()
            );
            assert_eq!(image.width() / image.height(), aspect, "{path}");
        }
    }
}

#[actix_web::test]
async fn refresh_urls_takes_at_most_fifty() {
    let server = TestServer::start().await;
    let me = account(&server, "many").await;
    let urls: Vec<String> = (0..51)
        .map(|i| format!("{}/attachments/1/{i}/a.txt", server.url("")))
        .collect();
    let refused = post(
        &server,
        "/api/v9/attachments/refresh-urls",
        Some(&me.token),
        json!({ "attachment_urls": urls }),
    )
    .await;
    assert_form_error(&refused, "attachment_urls", "BASE_TYPE_MAX_LENGTH");
    let fifty = post(
        &server,
        "/api/v9/attachments/refresh-urls",
        Some(&me.token),
        json!({ "attachment_urls": urls[..50] }),
    )
    .await;
    assert_eq!(fifty.status, 200, "{:?}", fifty.body);
    let refreshed = fifty.body["refreshed_urls"].as_array().unwrap();
    assert_eq!(refreshed.len(), 50);
    assert_eq!(refreshed[7]["original"], urls[7]);
    assert!(refreshed[7]["refreshed"].as_str().unwrap().contains("hm="));
}
