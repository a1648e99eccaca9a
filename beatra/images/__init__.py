"""Image generation (text-to-image, image-to-image) as asynchronous tasks."""
