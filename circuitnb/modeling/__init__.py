"""Models, training and sampling: the UNet and scheduler of Part I, the VAEs of Part II."""
