"""Part IV (issue 25, hybrid VAE-SAE): figures and the offline explorer of neuron activity over the schedule."""
