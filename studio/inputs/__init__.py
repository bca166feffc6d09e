"""What the studio is given: product catalogs, user tables and the audiences clustered from
them, one request's user features, brand guidelines. The lowest role above the shared
utilities: it imports no other studio package."""
