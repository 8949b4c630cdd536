"""The page at `/` without `page`: what a meter shows a browser, here what this server is."""

from __future__ import annotations

from starlette.responses import HTMLResponse, Response

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>switchgear</title>
</head>
<body>
<h1>switchgear</h1>
<p>A self-hosted control plane for switched electrical loads: smart plugs, socket strips,
water-heater controllers and energy meters, behind their vendors' APIs and its own.</p>
<ul>
<li><a href="/api/docs">Native API documentation</a>
(<a href="/api/openapi.json">OpenAPI</a>)</li>
</ul>
<h2>Meter API</h2>
<p>Each smart-MAIC meter answers here, as a real meter does on its own address:</p>
<pre>GET /?page=getdata&amp;devid=&lt;device id&gt;&amp;devpass=&lt;PIN&gt;[&amp;pout=0|1]</pre>
<p><code>pout=1</code> switches the load relay on, <code>pout=0</code> off.</p>
</body>
</html>
"""


def home() -> Response:
    """The server's own page (once the dashboard exists: `RedirectResponse("/ui/")`)."""
    return HTMLResponse(PAGE)
