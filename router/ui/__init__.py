"""The routing page's files (HTML, CSS, JavaScript), served by `router.api.routes.ui`; no build step."""
