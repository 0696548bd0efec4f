"""`llava-vitsplit serve`: load a checkpoint and serve the OpenAI chat-completions API with uvicorn.

    llava-vitsplit serve --model-path CKPT [--model-base BASE] [--host 127.0.0.1] [--port 8000] [--api-key KEY]
    python -m llava_vitsplit.serve.api.server --model-path CKPT
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from ..options import add_server_arguments, load_engine
from .app import ServerConfig, create_app
from .messages import ImageLimits

API_KEY_VARIABLE = "LLAVA_VITSPLIT_API_KEY"  # read when --api-key is not given: keeps the key out of `ps`


def server_config(args: argparse.Namespace, model_name: str) -> ServerConfig:
    try:
        return ServerConfig(
            model_name=args.served_model_name or model_name,
            api_key=args.api_key or os.environ.get(API_KEY_VARIABLE) or None,
            max_request_bytes=args.max_request_bytes,
            images=ImageLimits(args.max_images, args.max_image_pixels, args.allow_remote_images),
            default_max_tokens=args.max_new_tokens,
            max_batch_size=args.max_batch_size,
            max_queue=args.max_queue,
            batch_wait_s=args.batch_wait_ms / 1000,
        )
    except ValueError as error:
        raise SystemExit(f"llava-vitsplit serve: {error}") from None


def run(args: argparse.Namespace) -> int:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    engine = load_engine(args)
    config = server_config(args, engine.model_name)
    if args.host not in ("127.0.0.1", "localhost", "::1") and config.api_key is None:
        logging.getLogger(__name__).warning(
            "serving on %s without an API key: anyone who can reach this address can use the model "
            "(set --api-key or %s)", args.host, API_KEY_VARIABLE)
    logging.getLogger(__name__).info("serving %r on http://%s:%d/v1", config.model_name, args.host, args.port)
    uvicorn.run(create_app(engine, config), host=args.host, port=args.port, log_level="info",
                timeout_graceful_shutdown=5)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llava_vitsplit.serve.api.server", description=__doc__.split("\n")[0])
    add_server_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
