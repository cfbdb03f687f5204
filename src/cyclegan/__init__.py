"""CycleGAN: unpaired image-to-image translation (ResNet or U-Net generators, PatchGAN discriminators, image pools,
optional knowledge distillation into a narrower student)."""
