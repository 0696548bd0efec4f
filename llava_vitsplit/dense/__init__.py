"""Dense prediction (segmentation, depth) on the shared ViT-Split module."""
