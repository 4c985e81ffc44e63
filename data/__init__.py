"""Runtime data files (the demo store, the understanding taxonomy): installed as the package
`core.data`, so a non-editable install carries them."""
