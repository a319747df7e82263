// Package webchat is Herald's built-in web chat platform: a chat page served
// by Herald's own HTTP listener, so that anyone can try Herald in a browser
// with one command. The page, its style sheet and its script are embedded;
// there is no CDN, npm or build step.
//
// Adapter.Handler is mounted at "/" of the listener. It answers "/" (the
// page), "/assets/..." (its files) and this API (API.md, next to this
// file, has the details):
//
//	POST /api/messages  {"conversation":"<id>","text":"...","id":"<idempotency id>"}
//	                    202 {"id":"<message id>"} once the gateway journalled it;
//	                    400 {"error":"text: ...","field":"text"}; 503 {"error":...}
//	GET  /api/history?conversation=<id>
//	                    200 {"messages":[{"role":"user"|"assistant","text":..,"html":..,"id":..}],
//	                         "cursor":"<cursor>"}
//	GET  /api/events?conversation=<id>[&after=<cursor>]
//	                    text/event-stream: "message" and "edit" {"id","text","html"},
//	                    "delete" {"id"}, "typing" {}; ": keepalive" every 15 s
//
// A conversation id is 8 to 64 characters of [A-Za-z0-9_-], made by the
// page and kept in localStorage. Each conversation is a DM whose user is
// "webchat:<conversation>".
//
// The event stream first brings the page up to date: every bot message
// changed after the cursor "after" (every bot message of the current
// session without one), as "message" (or "delete") events. Events carry
// cursors in their "id:" field, and the history response carries one, so
// a page that reconnects or reloads misses nothing while the process runs.
// A page that falls behind (a bounded buffer per stream) is cut off, and
// catches up when it reconnects; the adapter never waits for a page.
// Streams are capped in all and per client (platform.Deps), 503 beyond;
// the listener's write timeout does not apply to them, as each write
// sets its own deadline.
//
// Security: with Options.Token set, every /api/ request needs
// "Authorization: Bearer <token>" (compared in constant time), else 401.
// Off loopback the token must be at least 16 characters; on loopback any
// token is the user's choice. The page takes the token from its URL
// fragment (/#token=...) and keeps it in sessionStorage.
//
// Wrong tokens: a client (an IP address, an IPv6 /64) that sends 5 wrong
// tokens in a minute gets 429 with Retry-After for the rest of that
// minute, whatever token it sends (see lockout). Past 4096 such clients in
// a minute, the rest share one count, except those that sent the right
// token within the last 10 minutes. The count is per address: behind a
// reverse proxy every user has the proxy's address, so anyone's wrong
// tokens lock everyone out for a minute. Herald does not read
// X-Forwarded-For, as it cannot tell whether the proxy that set it is one
// to trust.
//
// A request whose Origin is not this host gets 403, and without a token
// only localhost names and IP addresses are answered (DNS rebinding).
// Every response has a Content-Security-Policy that allows only the page's
// own files, X-Content-Type-Options: nosniff and Referrer-Policy:
// no-referrer. The token and message texts are never logged; debug logs
// note a message's length.
package webchat
