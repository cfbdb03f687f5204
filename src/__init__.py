"""Image-to-image translation GANs (pix2pix, pix2pixHD, CycleGAN) in MindSpore."""
