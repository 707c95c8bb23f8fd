package simdb

// MatchExternalID returns the IDs of the live records of object whose
// External ID field equals value, matched as [DB.Upsert] matches (ignoring
// case only on a unique case-insensitive field), in insertion order. It is
// empty for an unknown object, a field that is not an External ID, or no
// match.
func (db *DB) MatchExternalID(object, field, value string) []string {
	t := db.table(object)
	if t == nil {
		return nil
	}
	f := t.obj.field(field)
	if f == nil || !f.ExternalID || value == "" {
		return nil
	}
	db.mu.RLock()
	defer db.mu.RUnlock()
	var ids []string
	for _, r := range t.extIx[f.Name][indexKey(f, value)] {
		if !r.deleted {
			ids = append(ids, r.id)
		}
	}
	return ids
}
