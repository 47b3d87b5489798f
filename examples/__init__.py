"""Example bots, each with tests written only with the testing kit (`bottest`)."""
