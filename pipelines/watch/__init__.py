"""The WebSocket notification stream: the client behind tacn watch, and a stand-in of the app's server."""
