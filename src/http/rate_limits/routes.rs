//! Which bucket a request counts against: its method and path with the ids taken out, except
//! the route's major parameter (the channel, guild or webhook it acts on), as Discord buckets
//! them. `POST /api/v9/channels/1/messages` and `…/channels/2/messages` are two buckets;
//! `DELETE …/messages/5` and `…/messages/6` in one channel share one. Under `/webhooks` the
//! major parameter is the id with its token, as on Discord: a webhook's bucket is its own, and
//! each interaction's follow-ups (`/webhooks/{application_id}/{interaction_token}`) have theirs.

/// The route's bucket name (version prefix dropped), and the class of rule that applies.
pub fn route(method: &str, path: &str) -> (String, Class) {
    let path = path.trim_end_matches('/');
    let rest = path.strip_prefix("/api").unwrap_or(path);
    let rest = match rest.strip_prefix("/v") {
        Some(versioned) => versioned.find('/').map_or("", |at| &versioned[at..]),
        None => rest,
    };
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let mut route = String::with_capacity(rest.len() + 8);
    route.push_str(method);
    route.push(' ');
    for (index, segment) in segments.iter().enumerate() {
        let previous = index.checked_sub(1).and_then(|i| segments.get(i)).copied();
        let major = index == 1 && matches!(previous, Some("channels" | "guilds" | "webhooks"))
            || index == 2 && segments.first() == Some(&"webhooks");
        route.push('/');
        if major {
            route.push_str(segment);
        } else if previous == Some("reactions") {
            route.push_str(":emoji");
        } else if segment.bytes().all(|b| b.is_ascii_digit()) {
            route.push_str(":id");
        } else {
            route.push_str(segment);
        }
    }
    let class = match (method, segments.as_slice()) {
        ("POST", ["channels", _, "messages"]) => Class::MessageCreate,
        ("POST", ["webhooks", _, _]) => Class::WebhookExecute,
        ("GET", ["guilds" | "channels", _, "messages", "search"]) => Class::Search,
        (_, ["auth", ..]) => Class::Auth,
        (_, ["policies", "instance", ..] | ["gateway", ..] | ["ping" | "version"]) => {
            Class::Discovery
        }
        (_, ["rooms", "guest" | "new"]) => Class::RoomGuests,
        (_, ["rooms", "public"]) => Class::Discovery,
        _ => Class::Default,
    };
    (route, class)
}

/// Routes with rules of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Default,
    /// Sending messages, per channel.
    MessageCreate,
    /// Posting as a webhook (or an interaction's follow-up), per webhook (or interaction).
    WebhookExecute,
    /// Searching messages, per guild (or channel).
    Search,
    /// Logging in and registering, per address.
    Auth,
    /// Finding out about the instance (policies, gateway URL, ping, public rooms): cheap,
    /// asked by every client at start, so counted apart from the caller's global bucket.
    Discovery,
    /// Guests' room tokens and rooms, per address.
    RoomGuests,
}

/// Whether a path outside `/api` is limited too: the rooms service's routes for guests and
/// users (an application's, under its API key, are not: one server mints every user's token).
pub fn limited(path: &str) -> bool {
    path.starts_with("/api")
        || matches!(
            path.trim_end_matches('/'),
            "/rooms/guest" | "/rooms/new" | "/rooms/public" | "/rooms/api/token/user"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guests_rooms_routes_are_limited_but_not_applications() {
        assert!(limited("/api/v9/users/@me"));
        assert!(limited("/rooms/guest") && limited("/rooms/new/"));
        assert!(limited("/rooms/api/token/user"));
        assert!(!limited("/rooms/api/token") && !limited("/rooms/ws") && !limited("/rooms/"));
    }

    #[test]
    fn ids_are_taken_out_but_the_major_parameter() {
        let cases = [
            (
                "POST",
                "/api/v9/channels/1/messages",
                "POST /channels/1/messages",
                Class::MessageCreate,
            ),
            (
                "POST",
                "/api/channels/1/messages/",
                "POST /channels/1/messages",
                Class::MessageCreate,
            ),
            (
                "DELETE",
                "/api/v10/channels/1/messages/55",
                "DELETE /channels/1/messages/:id",
                Class::Default,
            ),
            (
                "PUT",
                "/api/v9/channels/1/messages/55/reactions/%F0%9F%91%8D/@me",
                "PUT /channels/1/messages/:id/reactions/:emoji/@me",
                Class::Default,
            ),
            (
                "PATCH",
                "/api/v9/guilds/7/members/8",
                "PATCH /guilds/7/members/:id",
                Class::Default,
            ),
            (
                "POST",
                "/api/v9/webhooks/3/tok",
                "POST /webhooks/3/tok",
                Class::WebhookExecute,
            ),
            (
                "PATCH",
                "/api/v9/webhooks/3/tok/messages/4",
                "PATCH /webhooks/3/tok/messages/:id",
                Class::Default,
            ),
            (
                "GET",
                "/api/v9/guilds/7/messages/search",
                "GET /guilds/7/messages/search",
                Class::Search,
            ),
            ("GET", "/api/v9/users/@me", "GET /users/@me", Class::Default),
            (
                "GET",
                "/api/policies/instance/domains",
                "GET /policies/instance/domains",
                Class::Discovery,
            ),
            (
                "GET",
                "/api/v10/gateway/bot",
                "GET /gateway/bot",
                Class::Discovery,
            ),
            ("GET", "/api/v9/users/42", "GET /users/:id", Class::Default),
            (
                "POST",
                "/api/v9/auth/login",
                "POST /auth/login",
                Class::Auth,
            ),
            (
                "POST",
                "/rooms/guest",
                "POST /rooms/guest",
                Class::RoomGuests,
            ),
            (
                "GET",
                "/rooms/public",
                "GET /rooms/public",
                Class::Discovery,
            ),
        ];
        for (method, path, bucket, class) in cases {
            assert_eq!(route(method, path), (bucket.to_string(), class), "{path}");
        }
    }
}
