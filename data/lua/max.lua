local function max(a, b)
  -- larger
  if a > b then return a end
  return b
end
