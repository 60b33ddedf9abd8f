"""Part IV (hybrid VAE-SAE): figures and the offline explorer of neuron activity over the schedule."""
