// CRM → Tryton: the customer's master data. What Tryton owns (invoices,
// amounts, the party code) never goes back; sales notes stay in the CRM.
for (const f of ["name", "phone", "email", "street", "city", "postal_code", "tax_id"]) {
  replica[f] = entity[f] == null ? "" : String(entity[f]);
}
