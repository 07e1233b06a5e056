"""Contract pages: référents set contracts up and run deliveries, members subscribe and sign,
farmers countersign and prepare, anyone verifies a signed PDF.

Access rule on every page (the API follows the same one):
- not logged in → the login page (except the public charter and PDF verification pages);
- an object you may not see → 404 (its existence is not disclosed);
- an object you may see but an action that is not yours → 403.
Business rules live in `services` / `signing`; reads in `selectors`; pages only translate.

One module per area: `setup` (list, set-up, publish, close), `deliveries` (sheets, marks,
summaries), `subscriptions` (subscribe, change, amend, absences), `signature` (signing, the
charter, verification), `member` (own deliveries, calendar feed, « Mes données »); `access`
holds the helpers they share.
"""
