"""The web console (``/console``): pages for people, over the same core as the APIs."""
