"""The command-line commands, one module each; ``fogsim.cli`` gathers them."""
