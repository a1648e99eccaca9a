"""Offline sandbox upstream impersonating OpenAI, DeepSeek, Kimi, GLM, Qwen, MiniMax, Suno.

Run ``python -m beatra.sandbox --port PORT``; build the app with
``beatra.sandbox.app.create_sandbox_app()``. Nothing is imported here on purpose:
``__main__`` must monkey-patch gevent before Flask and requests are loaded.
Never used in production; it only lets the gateway run and be tested without internet.
"""
