"""The HTTP routes of ``sentsim serve`` (FastAPI): OpenAI-compatible embeddings, similarity, index search.

Every error is a JSON body ``{"error": {"message", "type", "code"}}`` with a 4xx status naming
the problem (401 bad key, 404 unknown index, 413 body too large, 429 overloaded, 503 loading).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hmac
import json
import logging
import threading
import time

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

try:
    import orjson
except ImportError:  # the serve extra installs it; plain json works too
    orjson = None

from sentsim.prompts import choose_prompt
from sentsim.search.hybrid import check_mode
from sentsim.serve.batcher import Overloaded
from sentsim.serve.errors import ApiError, bad_request
from sentsim.serve.requests import embeddings_request, object_body, optional_object, texts_field
from sentsim.serve.service import Service
from sentsim.similarity import similarity

logger = logging.getLogger(__name__)

OPEN_ROUTES = ("/health", "/metrics")


def create_app(service: Service) -> FastAPI:
    """The app serving ``service``; the model loads on a background thread at start-up."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        threading.Thread(target=_load, args=(service,), name="sentsim-load", daemon=True).start()
        yield
        await run_in_threadpool(service.close)  # in-flight requests are done: uvicorn drained them

    app = FastAPI(title="sentsim", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    app.add_middleware(_Guard, service=service)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return _error_response(error, service)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s", request.url.path)
        return _error_response(ApiError(500, f"{type(error).__name__}: {error}", type="server_error"), service)

    @app.get("/health")
    async def health() -> JSONResponse:
        if service.failed is not None:
            return JSONResponse({"status": "failed", "error": str(service.failed)}, status_code=503)
        if not service.ready.is_set():
            return JSONResponse({"status": "loading"}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(service.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    @app.get("/models")
    async def models() -> dict:
        _require_ready(service)
        return {"object": "list", "data": [{"id": service.config.model, "object": "model", "owned_by": "sentsim"}]}

    @app.post("/v1/embeddings")
    @app.post("/embeddings")
    async def embeddings(request: Request) -> Response:
        _require_ready(service)
        encoder = service.encoder
        asked = embeddings_request(await _json(request, service), max_inputs=service.config.max_inputs, dim=encoder.dim)
        if asked.model not in (None, service.config.model) and asked.model not in service.other_names:
            service.other_names.add(asked.model)  # clients such as LangChain send their own default name
            logger.info("requests name model %r; serving %s to them", asked.model, service.config.model)
        prompt = _prompt(encoder, asked.prompt_name)
        vectors, tokens = await _embed(service, request, asked.texts, prompt)
        if asked.dimensions is not None and asked.dimensions < vectors.shape[1]:
            vectors = vectors[:, : asked.dimensions]
            if encoder.normalize:
                vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        data = [
            {"object": "embedding", "index": row, "embedding": _encoded(vector, asked.base64)}
            for row, vector in enumerate(vectors)
        ]
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return _json_response({"object": "list", "data": data, "model": service.config.model, "usage": usage})

    @app.post("/v1/similarity")
    async def similarity_route(request: Request) -> dict:
        _require_ready(service)
        body = object_body(await _json(request, service))
        limit = service.config.max_inputs
        a, single_a = texts_field(body, "a", max_inputs=limit)
        b, single_b = texts_field(body, "b", max_inputs=limit)
        pairwise, metric = body.get("pairwise", False), body.get("metric", "cosine")
        if not isinstance(pairwise, bool):
            raise bad_request(f"pairwise must be true or false, got {pairwise!r}")
        vectors, _ = await _embed(service, request, a + b, _prompt(service.encoder, None))
        left, right = vectors[: len(a)], vectors[len(a) :]
        try:
            scores = similarity(
                left[0] if single_a else left, right[0] if single_b else right, metric, pairwise=pairwise
            )
        except (TypeError, ValueError) as error:
            raise bad_request(str(error)) from None
        return {
            "object": "similarity",
            "metric": metric,
            "scores": scores if isinstance(scores, float) else scores.tolist(),
        }

    @app.get("/v1/indexes/{name}")
    async def index_info(name: str) -> dict:
        index = _index(service, name)
        manifest = index.manifest
        return {
            "name": name,
            "documents": len(index),
            "chunks": index.store.count_chunks(),
            "model": manifest["model"].get("name"),
            "dim": manifest["model"]["dim"],
            "metric": manifest["metric"],
            "backend": index.store.index_type,
            "precision": manifest["precision"],
            "truncate_dim": manifest["truncate_dim"],
            "keyword_tokenizer": (manifest["keywords"] or {}).get("tokenizer"),  # None: dense search only
        }

    @app.post("/v1/indexes/{name}/search")
    async def index_search(name: str, request: Request) -> dict:
        index = _index(service, name)
        body = object_body(await _json(request, service))
        if "query" in body and "queries" in body:
            raise bad_request("give 'query' (one text) or 'queries' (a list), not both")
        queries, _ = texts_field(
            body, "queries" if "queries" in body else "query", max_inputs=service.config.max_inputs
        )
        spec = _filter(body)
        options = {key: body.get(key) for key in ("nprobe", "ef_search", "weights")} | {"by": body.get("by", "chunk")}
        mode, vectors = body.get("mode", "dense"), None
        try:  # before the queries are embedded
            check_mode(mode, options["weights"], index.store, index.manifest["store"]["kind"], {})
        except (TypeError, ValueError) as error:
            raise bad_request(str(error)) from None
        if mode != "keyword":
            vectors, _ = await _embed(service, request, queries, index.prompts["query"], index.encoder)
        search = functools.partial(index.search, queries, body.get("k", 10), mode=mode, filter=spec, **options)
        hits = await _checked(run_in_threadpool(search, embeddings=vectors))
        results = [
            {"query": query, "hits": [_hit(hit) for hit in row]} for query, row in zip(queries, hits, strict=True)
        ]
        return {"object": "search", "results": results}

    @app.post("/v1/indexes/{name}/documents")
    async def index_upsert(name: str, request: Request) -> dict:
        index = _index(service, name)
        body = object_body(await _json(request, service))
        documents = body.get("documents")
        if not isinstance(documents, list) or not documents:
            raise bad_request("'documents' must be a non-empty list of {id, text, metadata} objects")
        if len(documents) > service.config.max_inputs:
            raise bad_request(
                f"'documents' holds {len(documents)} items; at most {service.config.max_inputs} a request"
            )
        for row, document in enumerate(documents):
            if not isinstance(document, dict) or "id" not in document or "text" not in document:
                raise bad_request(f"documents[{row}] must be an object with 'id' and 'text' (and optional 'metadata')")
        texts = [document["text"] for document in documents]
        ids = [document["id"] for document in documents]
        metadata = [document.get("metadata") for document in documents]
        upsert = index.upsert
        written = await _checked(
            service.on_model_thread(index.encoder, lambda: upsert(texts, ids, metadata, show_progress=False))
        )
        return {"object": "upsert", "ids": written, "documents": len(index)}

    @app.post("/v1/indexes/{name}/delete")
    async def index_delete(name: str, request: Request) -> dict:
        index = _index(service, name)
        body = object_body(await _json(request, service))
        if not isinstance(body.get("ids"), list):
            raise bad_request("'ids' must be a list of document ids")
        deleted = await _checked(run_in_threadpool(index.delete, body["ids"]))
        return {"object": "delete", "deleted": deleted, "documents": len(index)}

    return app


def _load(service: Service) -> None:
    with contextlib.suppress(BaseException):  # recorded in service.failed; /health reports it
        service.load()


class _Guard:
    """ASGI middleware: the API key (all but the open routes), and request counts and durations."""

    def __init__(self, app, service: Service) -> None:
        self.app, self.service = app, service

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, route, status = time.perf_counter(), _route_label(scope["path"]), [500]

        async def sending(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        key = self.service.config.api_key
        if key is not None and scope["path"] not in OPEN_ROUTES and not _key_matches(scope, key):
            error = ApiError(
                401, "a valid API key is required: Authorization: Bearer <key>", type="authentication_error"
            )
            await _error_response(error, self.service)(scope, receive, sending)
        else:
            await self.app(scope, receive, sending)
        metrics = self.service.metrics
        metrics.requests.labels(route, str(status[0])).inc()
        metrics.request_seconds.labels(route).observe(time.perf_counter() - started)


def _key_matches(scope: dict, key: str) -> bool:
    given = dict(scope["headers"]).get(b"authorization", b"")
    scheme, _, token = given.partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), key.encode())


def _require_ready(service: Service) -> None:
    if not service.ready.is_set() or service.failed is not None:
        raise ApiError(503, "the model is still loading; retry shortly", type="server_error", code="loading")


async def _json(request: Request, service: Service) -> object:
    """The body as JSON, refused past ``max_body_mb`` (413) or when it is not JSON (400)."""
    limit = int(service.config.max_body_mb * 2**20)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the body is {int(declared)} bytes; at most {limit}", code="body_too_large")
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            raise ApiError(413, f"the body is over {limit} bytes", code="body_too_large")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise bad_request(
            f"the body is not valid JSON ({type(error).__name__}: {error})", code="invalid_json"
        ) from None


async def _embed(
    service: Service, request: Request, texts: list[str], prompt: str, encoder=None
) -> tuple[np.ndarray, int]:
    """``service.embed``, dropped from the queue if the client goes away before its turn."""
    work = asyncio.ensure_future(service.embed(texts, prompt, encoder))
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if not work.done():  # the client went away: its texts are skipped, nobody reads the answer
        work.cancel()
        raise ApiError(499, "the client closed the request", code="client_closed")
    try:
        return work.result()
    except Overloaded as error:
        raise ApiError(
            429, f"the server is busy ({error}); retry shortly", type="rate_limit_error", code="overloaded"
        ) from None


async def _disconnected(request: Request) -> None:
    """Returns once the client has closed the connection (its body has been read already)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _checked(work):
    """The result of ``work``; the library's named input errors become 400s."""
    try:
        return await work
    except (TypeError, ValueError) as error:
        raise bad_request(str(error)) from None


def _prompt(encoder, prompt_name: str | None) -> str:
    try:
        return choose_prompt(encoder.prompts, encoder.default_prompt_name, None, prompt_name) or ""
    except (KeyError, ValueError) as error:
        raise bad_request(str(error).strip("'\"")) from None


def _index(service: Service, name: str):
    _require_ready(service)
    if name not in service.indexes:
        known = ", ".join(sorted(service.indexes)) or "none"
        raise ApiError(404, f"no index named {name!r}; this server has: {known}", code="unknown_index")
    return service.indexes[name]


def _filter(body: dict) -> dict | None:
    spec, where = optional_object(body, "filter"), optional_object(body, "where")
    if spec and where and set(spec) & set(where):
        raise bad_request(f"'filter' and 'where' both set {sorted(set(spec) & set(where))}")
    merged = {**(spec or {}), **(where or {})}
    return merged or None


def _hit(hit) -> dict:
    return {
        "id": hit.id,
        "score": hit.score,
        "text": hit.text,
        "metadata": hit.metadata,
        "start": hit.start,
        "end": hit.end,
        "dense_rank": hit.dense_rank,
        "dense_score": hit.dense_score,
        "keyword_rank": hit.keyword_rank,
        "keyword_score": hit.keyword_score,
    }


def _encoded(vector: np.ndarray, as_base64: bool) -> np.ndarray | list[float] | str:
    if as_base64:
        return base64.b64encode(np.ascontiguousarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return vector if orjson is not None else vector.tolist()


def _json_response(payload: dict) -> Response:
    """JSON through orjson where installed (it writes float arrays several times faster)."""
    if orjson is None:
        return JSONResponse(payload)
    return Response(orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json")


def _error_response(error: ApiError, service: Service) -> JSONResponse:
    service.metrics.errors.labels(error.code or error.type).inc()
    headers = {"Retry-After": "1"} if error.status == 429 else None
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


def _route_label(path: str) -> str:
    """A bounded label: index names fold into one route."""
    if path.startswith("/v1/indexes/"):
        return "/v1/indexes/" + path.rsplit("/", 1)[-1] if path.count("/") > 3 else "/v1/indexes"
    return (
        path
        if path in ("/health", "/metrics", "/v1/models", "/models", "/v1/embeddings", "/embeddings", "/v1/similarity")
        else "other"
    )
