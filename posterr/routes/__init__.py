"""HTTP routes, one module per resource: parse the request, call one service, answer JSON."""
