"""The baseline: a bare Flask app that parses the same JSON body and returns a small dict."""

from flask import Flask, request

app = Flask(__name__)


@app.post("/v1/assess")
def assess():
    report = request.get_json()
    return {"received": len(report), "level": "self_care"}


@app.get("/healthz")
def healthz():
    return {"status": "ok"}
