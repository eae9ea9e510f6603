"""The NoLA method: text classifiers, pseudo-labels, the DINO alignment head, prompt tuning."""
