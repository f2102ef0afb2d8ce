// Package dashboard serves the authors' web dashboard: server-rendered
// pages (html/template) with SVG charts drawn on the server
// (dashboard/chart) and their stylesheet embedded, so that it needs no
// JavaScript, no CDN and no internet.
//
// Every panel is a query of the query API ([server.ParseQuery] reads the
// same JSON the API takes, and a [server.Querier] answers it), so every
// number it shows can also be fetched from /api/v2 and downloaded as CSV,
// exactly as shown, from the panel's own link.
//
// An author signs in with a project's read key. The browser then holds a
// random session token in a cookie (HttpOnly, SameSite=Strict, Secure
// behind TLS); the server keeps its hash and the ids of the read keys
// signed in with it, one per project ([server.SessionStore]), so that an
// author switches between projects without signing in again, and a revoked
// key leaves every session at once. Keys never appear in URLs or logs.
// Every form carries a CSRF token derived from the session token (before
// sign-in, a double-submit cookie), and cross-site form posts are refused.
// Pages are sent with a Content-Security-Policy that allows no script at
// all and styles only from the server.
package dashboard
