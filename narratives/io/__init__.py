"""Reading posts: every format into one table of rows, each kept, bad ones with a reason."""
