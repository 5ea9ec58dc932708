"""The installation: where its .env and SQLite database live, and which server secret it uses."""
